/* regression.c -- the regression losses (mse, l1, huber, smooth_l1, poisson_nll, gaussian_nll: torch semantics;
 * log_cosh; pinball, tweedie: scikit-learn's) as pair kernels over (input, target).
 * Compiled once per SIMD level; the kernels are instantiated once per dtype in regression_tpl.h.
 * The per-element math is in regression_tpl.h, in the element type (sums in double). */
#include "common.h"

#ifdef FL_VF_N
/* The vector forms (fl_velem_fn, common.h) of the float losses, the formulas of regression_tpl.h; param: huber's
 * delta (already rounded to float). */
FL_INLINE void fl_mse_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float param,
                            int flag, const int n)
{
    (void)param, (void)flag;
    FL__EACH(j, n) {
        const fl_vf d = x[j] - y[j];
        loss[j] = d * d;
        dloss[j] = 2.0f * d;
        d2loss[j] = (fl_vf){0} + 2.0f;
    }
}

FL_INLINE void fl_l1_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float param,
                           int flag, const int n)
{
    (void)param, (void)flag;
    FL__EACH(j, n) {
        d2loss[j] = (fl_vf){0}; /* l1 has no NAME_grad_hess: never stored */
        const fl_vf d = x[j] - y[j];
        loss[j] = fl__vf_blend(d < 0.0f, -d, d);
        /* sign(d), 0 for +-0, nan for nan */
        dloss[j] = fl__vf_blend(d > 0.0f, (fl_vf){0} + 1.0f,
                                fl__vf_blend(d < 0.0f, (fl_vf){0} - 1.0f, fl__vf_blend(d == 0.0f, (fl_vf){0}, d)));
    }
}

FL_INLINE void fl_huber_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float delta,
                              int flag, const int n)
{
    (void)flag;
    FL__EACH(j, n) {
        const fl_vf d = x[j] - y[j], ad = fl__vf_blend(d < 0.0f, -d, d);
        loss[j] = fl__vf_blend(ad < delta, 0.5f * d * d, delta * (ad - 0.5f * delta));
        dloss[j] = fl__vf_blend(d < -delta, (fl_vf){0} - delta, fl__vf_blend(d > delta, (fl_vf){0} + delta, d));
        /* 1 inside, 0 outside, nan for nan */
        d2loss[j] = fl__vf_blend(ad < delta, (fl_vf){0} + 1.0f, fl__vf_blend(ad >= delta, (fl_vf){0}, d));
    }
}
#endif

#define FL_TEMPLATE "regression_tpl.h"
#include "each_dtype.h"
