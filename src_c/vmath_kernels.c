/* vmath_kernels.c -- the functions of vmath.h applied to arrays, compiled once per SIMD level like the
 * kernels that use them, so that the tests check exactly the code each level runs. */
#include "common.h"
#include "vmath.h"

#define FL_VMATH_KERNEL(T, SFX)                                                                   \
    int FL_IMPL(fl_vmath_##SFX)(fl_vmath_args *a)                                                 \
    {                                                                                             \
        const T *FL_RESTRICT x = (const T *)a->x;                                                 \
        T *FL_RESTRICT out = (T *)a->out;                                                         \
        switch (a->op) {                                                                          \
        case FL_VMATH_EXP: for (fl_index i = 0; i < a->n; i++) out[i] = fl_exp_##SFX(x[i]); break;     \
        case FL_VMATH_LOG: for (fl_index i = 0; i < a->n; i++) out[i] = fl_log_##SFX(x[i]); break;     \
        case FL_VMATH_LOG1P: for (fl_index i = 0; i < a->n; i++) out[i] = fl_log1p_##SFX(x[i]); break; \
        default: for (fl_index i = 0; i < a->n; i++) out[i] = fl_expm1_##SFX(x[i]); break;            \
        }                                                                                         \
        return FL_OK;                                                                             \
    }

FL_VMATH_KERNEL(float, f32)
FL_VMATH_KERNEL(double, f64)
