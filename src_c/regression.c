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

/* beta = param (0: the l1 branch everywhere: ad < 0 is never true) */
FL_INLINE void fl_smooth_l1_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                  float beta, int flag, const int n)
{
    (void)flag;
    FL__EACH(j, n) {
        const fl_vf d = x[j] - y[j], ad = fl__vf_blend(d < 0.0f, -d, d);
        const fl_vfi in = ad < beta;
        loss[j] = fl__vf_blend(in, 0.5f * d * d / beta, ad - 0.5f * beta);
        const fl_vf sign = fl__vf_blend(d > 0.0f, (fl_vf){0} + 1.0f, fl__vf_blend(d < 0.0f, (fl_vf){0} - 1.0f, d));
        dloss[j] = fl__vf_blend(in, d / beta, sign);
        d2loss[j] = fl__vf_blend(in, (fl_vf){0} + 1.0f / beta, fl__vf_blend(ad >= beta, (fl_vf){0}, d));
    }
}

/* a = |d|; a < 1: u = expm1(a), tanh = u (u + 2) / (u^2 + 2 u + 2), loss log1p(u^2 / (2 + 2 u)); else t =
 * exp(-2a), tanh = (1 - t) / (1 + t), loss a - log 2 + log1p(t) (nan and inf go this way): one division for
 * both forms of tanh, d2 = 1 - tanh^2 (a < 1) or 4 t / (1 + t)^2 */
FL_INLINE void fl_log_cosh_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                 float param, int flag, const int n)
{
    (void)param, (void)flag;
    fl_vf d[FL__XU], ad[FL__XU], u[FL__XU], t[FL__XU], arg[FL__XU], inv_unused[FL__XU];
    fl_vfi big[FL__XU];
    FL__EACH(j, n) {
        d[j] = x[j] - y[j];
        ad[j] = (fl_vf)((fl_vfi)d[j] & INT32_MAX);
        big[j] = ~(ad[j] < 1.0f);
        u[j] = fl__vf_blend(big[j], (fl_vf){0} + 1.0f, ad[j]);
        t[j] = -ad[j];
    }
    fl__vexpm1_unit_f32_n(u, u, n);
    fl__vexp_nonpos_f32_n(t, n); /* e = exp(-a); below 2^-126 flushed: e^2 is 0 there anyway */
    FL__EACH(j, n) {
        t[j] = t[j] * t[j];
        const fl_vf num = fl__vf_blend(big[j], 1.0f - t[j], u[j] * (u[j] + 2.0f));
        const fl_vf den = fl__vf_blend(big[j], 1.0f + t[j], FL__VFMA(u[j], u[j] + 2.0f, (fl_vf){0} + 2.0f));
        const fl_vf inv = 1.0f / den, th = num * inv;
        dloss[j] = fl__vf_blend(d[j] < 0.0f, -th, th);
        d2loss[j] = fl__vf_blend(big[j], 4.0f * t[j] * inv * inv, 1.0f - th * th);
        arg[j] = fl__vf_blend(big[j], t[j], u[j] * u[j] / (2.0f + 2.0f * u[j]));
    }
    fl__vlog1p_unit_f32_n(arg, loss, inv_unused, n);
    FL__EACH(j, n) loss[j] += (fl_vf)(big[j] & (fl_vfi)(ad[j] - 0.69314718055994530942f));
}

/* quantile q = param: (1 - q) d where d > 0, else q (y - x); d/dx = 1 - q, -q, nan for nan */
FL_INLINE void fl_pinball_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float q,
                                int flag, const int n)
{
    (void)flag;
    FL__EACH(j, n) {
        d2loss[j] = (fl_vf){0}; /* pinball has no NAME_grad_hess: never stored */
        const fl_vf d = x[j] - y[j];
        const fl_vfi pos = d > 0.0f;
        loss[j] = fl__vf_blend(pos, (1.0f - q) * d, q * (y[j] - x[j]));
        dloss[j] = fl__vf_blend(pos, (fl_vf){0} + (1.0f - q), fl__vf_blend(d <= 0.0f, (fl_vf){0} - q, d));
    }
}

/* out = s (exp(x) - y), exp(x) - y in double and rounded once with the product (s NULL: 1), where |x| <= 80
 * (out kept elsewhere: the float form, which cancels there only for a y above 5e34 or below 2e-35; within 80,
 * s = exp(c x), |c| <= 1, is a normal float): the gradients of poisson_nll and tweedie. Near the optimum they
 * are a small difference of large terms: from a float exp, its ulp was all of it (4.7e-5 relative error in a
 * float32 test). fl_exp_f64's bits, as the element form. */
FL_INLINE void fl__exp_minus_y_f64(const fl_vf *x, const fl_vf *y, const fl_vf *s, fl_vf *out, const int n)
{
    /* the low halves, then the high ones: 2 n chains in lockstep (n was latency-bound), in two runs of n where
     * 2 n is more than FL__EACH unrolls (AVX-512's 16: loops over arrays in memory, which also kept gcc from
     * dropping the exps from the instance without a gradient: Intel Xeon, 10M float32, 2 threads, tweedie_loss
     * 9.1 -> 2.9 ms, poisson_nll_loss 8.2 -> 1.8 ms, tweedie_loss_grad_hess 14.1 -> 10.1 ms) */
    fl_vd e[2 * FL__XU];
    fl_vfi near[FL__XU];
    FL__EACH(j, n) {
        near[j] = (fl_vfi)((fl_vfi)x[j] & INT32_MAX) <= (fl_vfi)((fl_vf){0} + 80.0f);
        fl__vf_widen((fl_vf)(near[j] & (fl_vfi)x[j]), &e[j], &e[n + j]);
    }
    if (2 * n <= FL__EACH_MAX) {
        fl__vexp_near_f64_n(e, 2 * n);
    } else {
        fl__vexp_near_f64_n(e, n);
        fl__vexp_near_f64_n(e + n, n);
    }
    FL__EACH(j, n) {
        fl_vd y0, y1, s0, s1;
        fl__vf_widen(y[j], &y0, &y1);
        y0 = e[j] - y0, y1 = e[n + j] - y1;
        if (s) {
            fl__vf_widen(s[j], &s0, &s1);
            y0 *= s0, y1 *= s1;
        }
        out[j] = fl__vf_blend(near[j], fl__vf_narrow(y0, y1), out[j]);
    }
}

/* eps = param; flag: FL_POISSON_* (the same for every element: a branch per step, not per lane); the gradient in
 * double where it cancels (exp(x) - y; x + eps - y, exact there, over x + eps) */
FL_INLINE void fl_poisson_nll_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                    float eps, int flag, const int n)
{
    fl_vf e[FL__XU];
    if (flag & FL_POISSON_LOG_INPUT) {
        FL__EACH(j, n) e[j] = x[j];
        fl__vexp_mid_f32_n(e, n);
        FL__EACH(j, n) {
            loss[j] = e[j] - y[j] * x[j];
            dloss[j] = e[j] - y[j];
            d2loss[j] = e[j];
        }
        fl__exp_minus_y_f64(x, y, NULL, dloss, n);
    } else {
        FL__EACH(j, n) e[j] = x[j] + eps;
        fl__vlog_f32_n(e, loss, n);
        FL__EACH(j, n) {
            const fl_vf inv = 1.0f / (x[j] + eps);
            fl_vd x0, x1, y0, y1, i0, i1;
            fl__vf_widen(x[j], &x0, &x1);
            fl__vf_widen(y[j], &y0, &y1);
            fl__vf_widen(inv, &i0, &i1);
            loss[j] = x[j] - y[j] * loss[j];
            dloss[j] = fl__vf_blend((fl_vfi)((fl_vfi)x[j] & INT32_MAX) == (fl_vfi)((fl_vf){0} + INFINITY),
                                    1.0f - y[j] * inv,
                                    fl__vf_narrow((x0 + (double)eps - y0) * i0, (x1 + (double)eps - y1) * i1));
            d2loss[j] = y[j] * inv * inv;
        }
    }
    if (flag & FL_POISSON_FULL) { /* Stirling's term where y > 1: y log y - y + 0.5 log(2 pi y) */
        fl__vlog_f32_n(y, e, n);
        FL__EACH(j, n) {
            const fl_vf st = y[j] * e[j] - y[j] + 0.5f * (e[j] + 1.83787706640934548356f); /* log(2 pi) */
            loss[j] += (fl_vf)((y[j] > 1.0f) & (fl_vfi)st);
        }
    }
}

/* gaussian_nll: v = var (clamped to eps = param; nan kept), flag: full */
FL_INLINE void fl_gaussian_nll_velem(const fl_vf *x, const fl_vf *y, const fl_vf *v, fl_vf *loss, fl_vf *dloss,
                                     fl_vf *d2loss, float eps, float param2, int flag, const int n)
{
    (void)param2;
    fl_vf vv[FL__XU], lg[FL__XU];
    FL__EACH(j, n) vv[j] = fl__vf_blend(v[j] < eps, (fl_vf){0} + eps, v[j]);
    if (eps >= 0x1p-126f) {
        /* the clamped var is a normal float, inf or nan: the table log (half the FMAs of fl__vlog_f32_n's, no
         * subnormal or sign cases; within 1.231 ulp, against 0.82), inf and nan passed through: 10M float32 13%
         * faster (interleaved, 1 and 2 threads) */
        fl__vlog_tab_normal_f32_n(vv, lg, n);
        FL__EACH(j, n) lg[j] = fl__vf_blend(~(vv[j] <= 0x1.fffffep127f), vv[j], lg[j]);
    } else {
        fl__vlog_f32_n(vv, lg, n);
    }
    FL__EACH(j, n) {
        const fl_vf d = x[j] - y[j], inv = 1.0f / vv[j];
        loss[j] = 0.5f * (lg[j] + d * d * inv) + (flag ? 0.91893853320467274178f : 0.0f);
        dloss[j] = d * inv;
        d2loss[j] = inv;
    }
}

/* power p = param; flag: FL_TWEEDIE_* (a branch per step); d/dx as e1 (exp(x) - y), that in double */
FL_INLINE void fl_tweedie_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float p,
                                int flag, const int n)
{
    fl_vf e2[FL__XU], e1[FL__XU];
    if (flag == FL_TWEEDIE_POISSON) /* exp(x) - y x: poisson_nll's with log_input */
        fl_poisson_nll_velem(x, y, loss, dloss, d2loss, 0.0f, FL_POISSON_LOG_INPUT, n);
    else if (flag == FL_TWEEDIE_GAMMA) {
        FL__EACH(j, n) e1[j] = -x[j];
        fl__vexp_mid_f32_n(e1, n);
        FL__EACH(j, n) {
            const fl_vf ye = y[j] * e1[j];
            loss[j] = x[j] + ye;
            dloss[j] = 1.0f - ye;
            d2loss[j] = ye;
        }
        fl__exp_minus_y_f64(x, y, e1, dloss, n);
    } else {
        FL__EACH(j, n) {
            e2[j] = (2.0f - p) * x[j];
            e1[j] = (1.0f - p) * x[j];
        }
        fl__vexp_mid_f32_n(e2, n);
        fl__vexp_mid_f32_n(e1, n);
        /* the loss's divisions by (2 - p) and (1 - p) as products with their reciprocals (rounded: 1.5 ulp
         * instead of 0.5; both terms >= 0, no cancellation): this loop is bound by its arithmetic, and a
         * division has a fraction of a multiplication's throughput (with fl__vexp_mid_f32_n: 10M float32
         * tweedie_loss on 1 thread 14.2 -> 12.5 ms) */
        const float c2 = 1.0f / (2.0f - p), c1 = 1.0f / (1.0f - p);
        FL__EACH(j, n) {
            const fl_vf ye1 = y[j] * e1[j];
            loss[j] = e2[j] * c2 - ye1 * c1;
            dloss[j] = e2[j] - ye1;
            d2loss[j] = (2.0f - p) * e2[j] - (1.0f - p) * ye1;
        }
        fl__exp_minus_y_f64(x, y, e1, dloss, n);
    }
}
#endif

#define FL_TEMPLATE "regression_tpl.h"
#include "each_dtype.h"
