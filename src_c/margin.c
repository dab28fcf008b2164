/* margin.c -- the margin losses: binary (zero-one, logistic, exponential, hinge; pair kernels over (score, label)
 * with labels in {-1, +1}) and multiclass (multiclass hinge, top-1 zero-one; row kernels over rows of class
 * scores with integer targets). Compiled once per SIMD level; the kernels are written once in margin_tpl.h.
 *
 * The per-element math is in margin_tpl.h, in the element type (float data is computed with the float functions
 * of vmath.h, 16 lanes per AVX-512 vector; sums are in double). */
#include "common.h"

#ifdef FL_VF_N
/* The vector forms of the float exponential and logistic losses (margin_tpl.h has the formulas). */
FL_INLINE void fl_exponential_velem(fl_vf x, fl_vf y, fl_vf *loss, fl_vf *dloss)
{
    const fl_vf e = fl__vexp_f32(-(y * x));
    *loss = e;
    *dloss = -y * e;
}

FL_INLINE void fl_logistic_velem(fl_vf x, fl_vf y, fl_vf *loss, fl_vf *dloss)
{
    const fl_vf m = y * x;
    const fl_vfi neg = m < 0.0f;
    const fl_vf e = fl__vexp_f32((fl_vf)((fl_vfi)m | INT32_MIN)); /* exp(-|m|): the sign bit set */
    fl_vf inv;
    const fl_vf sp = fl__vlog1p_unit_f32(e, &inv);
    *loss = fl__vf_blend(neg, sp - m, sp);
    *dloss = -y * fl__vf_blend(neg, inv, e * inv);
}
#endif

#define FL_TEMPLATE "margin_tpl.h"
#include "each_dtype.h"
