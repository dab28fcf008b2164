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

/* exp(x) in double of the lanes of n float vectors where |x| <= 80 (near[j]; e[j] the low halves of vector j, e[n +
 * j] the high ones; elsewhere exp(0)): fl_exp_f64's bits, as the element forms. Within 80, every exp(c x), |c| <=
 * 1, is a normal float, and a difference with another float term cancels only for a term above 5e34 or below
 * 2e-35. The low halves, then the high ones: 2 n chains in lockstep (n was latency-bound), in two runs of n where
 * 2 n is more than FL__EACH unrolls (AVX-512's 16: loops over arrays in memory, which also kept gcc from dropping
 * the exps from the instance without a gradient: Intel Xeon, 10M float32, 2 threads, tweedie_loss 9.1 -> 2.9 ms,
 * poisson_nll_loss 8.2 -> 1.8 ms, tweedie_loss_grad_hess 14.1 -> 10.1 ms) */
FL_INLINE void fl__vexp_widened_f64(const fl_vf *x, fl_vd *e, fl_vfi *near, const int n)
{
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
}

/* out = s (exp(x) - y), exp(x) - y in double and rounded once with the product (s NULL: 1), where |x| <= 80 (out
 * kept elsewhere: the float form): the gradients of tweedie. Near the optimum they are a small difference of
 * large terms: from a float exp, its ulp was all of it (4.7e-5 relative error in a float32 test). */
FL_INLINE void fl__exp_minus_y_f64(const fl_vf *x, const fl_vf *y, const fl_vf *s, fl_vf *out, const int n)
{
    fl_vd e[2 * FL__XU];
    fl_vfi near[FL__XU];
    fl__vexp_widened_f64(x, e, near, n);
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

/* e - y x in double for the two halves of a float vector (e0, e1: exp(x)'s halves): y x is exact in double,
 * so the FMA rounds once */
FL_INLINE void fl__poisson_e_minus_yx(fl_vf x, fl_vf y, fl_vd e0, fl_vd e1, fl_vd *lo, fl_vd *hi)
{
    fl_vd x0, x1, y0, y1;
    fl__vf_widen(x, &x0, &x1);
    fl__vf_widen(y, &y0, &y1);
    *lo = FL__VDFMA(0.0 - y0, x0, e0);
    *hi = FL__VDFMA(0.0 - y1, x1, e1);
}

/* poisson_nll with log_input (and tweedie at power 1): exp(x) - y x, exp(x) - y and exp(x), each in double where
 * |x| <= 80 (near[j]; y x is exact there: a product of two floats), the loss as doubles (ld[j] the low halves of
 * vector j, ld[n + j] the high ones), the derivatives rounded once; the float forms elsewhere (an exp that
 * overflows or underflows; nan) into loss, dloss, d2loss. Near the optimum (exp(x) ~ y) the loss is a small
 * difference of large terms, and the float form's roundings were most of it (12,700 float32 eps of the loss in
 * the worst of 100,000 elements of a fitted model, y ~ Poisson(0.5 .. 6)); its double exp serves all three, so
 * the float exp is not computed where every lane is within 80. */
FL_INLINE void fl__poisson_log_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vd *ld, fl_vfi *near,
                                     fl_vf *dloss, fl_vf *d2loss, const int n)
{
    fl_vfi all = (fl_vfi){0} - 1;
    fl__vexp_widened_f64(x, ld, near, n);
    FL__EACH(j, n) {
        fl_vd y0, y1;
        fl__vf_widen(y[j], &y0, &y1);
        const fl_vd e0 = ld[j], e1 = ld[n + j];
        dloss[j] = fl__vf_narrow(e0 - y0, e1 - y1);
        d2loss[j] = fl__vf_narrow(e0, e1);
        fl__poisson_e_minus_yx(x[j], y[j], e0, e1, &ld[j], &ld[n + j]);
        all &= near[j];
    }
    if (__builtin_expect(fl__any_lane(~all), 0)) {
        fl_vf ef[FL__XU];
        FL__EACH(j, n) ef[j] = x[j];
        fl__vexp_mid_f32_n(ef, n);
        FL__EACH(j, n) {
            loss[j] = ef[j] - y[j] * x[j];
            dloss[j] = fl__vf_blend(near[j], dloss[j], ef[j] - y[j]);
            d2loss[j] = fl__vf_blend(near[j], d2loss[j], ef[j]);
        }
    }
}

/* The float form of fl__poisson_log_velem's losses (FL_PAIR_KERNEL_VD's, where they are summed): e = exp(x) in
 * float, ld = e - y x in double (y x exact), err its bound in units of 2^-24: 1.5 e + 2^-125 (fl__vexp_mid_f32_n
 * within 1.43 2^-24 of exp(x) where that is a normal float, and 0.75 2^-149 below; every float x checked at the
 * AVX2 and AVX-512 levels). An exp of 16 floats where the double form takes two of 8 doubles, each half again as
 * long: 10M float32, 2 threads, AMD EPYC Zen 4, the loss alone 4.1 -> 2.6 ms (interleaved). Where exp(x) ~ y x
 * over a block (a fitted model with counts above e) the bounds are not within the sum, and the block is done in
 * double. */
FL_INLINE void fl__poisson_log_vfloat(const fl_vf *x, const fl_vf *y, fl_vd *ld, fl_vf *err, const int n)
{
    fl_vf e[FL__XU];
    FL__EACH(j, n) e[j] = x[j];
    fl__vexp_mid_f32_n(e, n);
    FL__EACH(j, n) {
        fl_vd e0, e1;
        fl__vf_widen(e[j], &e0, &e1);
        fl__poisson_e_minus_yx(x[j], y[j], e0, e1, &ld[j], &ld[n + j]);
        err[j] = FL__VFMA(e[j], (fl_vf){0} + 1.5f, (fl_vf){0} + 0x1p-125f);
    }
}

/* log(v[j]) in place for n positive normal doubles: the table's where the level has it (AVX-512: no division,
 * within 2.2 ulp), else fdlibm's (fl_log_f64's bits) */
#ifdef FL__HAVE_LOG_TAB_F64
#define fl__vlog_pos_any_f64_n fl__vlog_tab_pos_f64_n
#else
#define fl__vlog_pos_any_f64_n fl__vlog_pos_f64_n
#endif

/* eps = param; flag: FL_POISSON_* (the same for every element: a branch per step, not per lane). Every loss in
 * double and rounded once where its terms are finite (they cancel near the optimum: float roundings of the terms
 * were most of the loss there; now within half a float32 ulp and 2^-50 of the terms), the float forms elsewhere;
 * the rate form's gradient in double too (x + eps - y, exact there, over x + eps). fl__poisson_nll_vterms: the
 * losses in double in the lanes fin (ld[j] the low halves of vector j, ld[n + j] the high ones), the float forms'
 * in loss elsewhere; fl_poisson_nll_velem rounds them once, fl_poisson_nll_velemd gives them to the reductions as
 * they are (FL_PAIR_KERNEL_VD). err: NULL, or the log form's losses from fl__poisson_log_vfloat (every lane
 * fin), the rest's 0. */
FL_INLINE void fl__poisson_nll_vterms(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vd *ld, fl_vfi *fin,
                                      fl_vf *dloss, fl_vf *d2loss, float eps, int flag, fl_vf *err, const int n)
{
    FL__EACH(j, n) loss[j] = (fl_vf){0}; /* the float forms' losses, set where some lane takes them */
    if (err) FL__EACH(j, n) err[j] = (fl_vf){0};
    if ((flag & FL_POISSON_LOG_INPUT) && err) { /* the derivatives as without err (dead code for the loss alone) */
        fl_vd dd[2 * FL__XU];
        fl__poisson_log_velem(x, y, loss, dd, fin, dloss, d2loss, n);
        fl__poisson_log_vfloat(x, y, ld, err, n);
        FL__EACH(j, n) fin[j] = (fl_vfi){0} - 1;
    } else if (flag & FL_POISSON_LOG_INPUT) {
        fl__poisson_log_velem(x, y, loss, ld, fin, dloss, d2loss, n);
    } else { /* x - y log(x + eps), x + eps in double (as the gradient), where it is positive and finite */
        fl_vf u[FL__XU];
        FL__EACH(j, n) {
            u[j] = x[j] + eps;
            fin[j] = (x[j] > -eps) & (x[j] < INFINITY);
            fl__vf_widen(fl__vf_blend(fin[j], x[j], (fl_vf){0} + 1.0f), &ld[j], &ld[n + j]);
            ld[j] += (double)eps, ld[n + j] += (double)eps;
        }
        fl__vlog_pos_any_f64_n(ld, 2 * n);
        FL__EACH(j, n) {
            const fl_vf inv = 1.0f / u[j];
            fl_vd x0, x1, y0, y1, i0, i1;
            fl__vf_widen(x[j], &x0, &x1);
            fl__vf_widen(y[j], &y0, &y1);
            fl__vf_widen(inv, &i0, &i1);
            ld[j] = x0 - y0 * ld[j];
            ld[n + j] = x1 - y1 * ld[n + j];
            dloss[j] = fl__vf_blend((fl_vfi)((fl_vfi)x[j] & INT32_MAX) == (fl_vfi)((fl_vf){0} + INFINITY),
                                    1.0f - y[j] * inv,
                                    fl__vf_narrow((x0 + (double)eps - y0) * i0, (x1 + (double)eps - y1) * i1));
            d2loss[j] = y[j] * inv * inv;
        }
        fl_vfi all = (fl_vfi){0} - 1;
        FL__EACH(j, n) all &= fin[j];
        if (__builtin_expect(fl__any_lane(~all), 0)) { /* 0, a negative, inf or nan: the float log's values */
            fl_vf lg[FL__XU];
            fl__vlog_f32_n(u, lg, n);
            FL__EACH(j, n) loss[j] = x[j] - y[j] * lg[j];
        }
    }
    if (flag & FL_POISSON_FULL) { /* Stirling's term where y > 1: y log y - y + 0.5 (log y + log(2 pi)), in double */
        fl_vd ly[2 * FL__XU];
        FL__EACH(j, n) { /* the log of a finite y > 1, else of 1 (y = inf: inf 0 - inf, nan, as inf inf - inf) */
            const fl_vfi big = (y[j] > 1.0f) & (y[j] < INFINITY);
            fl__vf_widen(fl__vf_blend(big, y[j], (fl_vf){0} + 1.0f), &ly[j], &ly[n + j]);
        }
        fl__vlog_pos_any_f64_n(ly, 2 * n);
        FL__EACH(j, n) {
            fl_vd yd[2], st[2];
            fl__vf_widen(y[j], &yd[0], &yd[1]);
            for (int h = 0; h < 2; h++) {
                const fl_vd l = ly[h * n + j], t = yd[h] * l - yd[h] + 0.5 * (l + 1.83787706640934548356);
                st[h] = (fl_vd)((fl_vdi)(yd[h] > 1.0) & (fl_vdi)t);
                ld[h * n + j] += st[h];
            }
            loss[j] += fl__vf_narrow(st[0], st[1]); /* the lanes of the float forms */
        }
    }
}
FL_INLINE void fl_poisson_nll_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                    float eps, int flag, const int n)
{
    fl_vd ld[2 * FL__XU];
    fl_vfi fin[FL__XU];
    fl__poisson_nll_vterms(x, y, loss, ld, fin, dloss, d2loss, eps, flag, NULL, n);
    FL__EACH(j, n) loss[j] = fl__vf_blend(fin[j], fl__vf_narrow(ld[j], ld[n + j]), loss[j]);
}
/* the losses of a velemd from double losses ld in the lanes fin and float ones (loss) elsewhere: ld as it is; a
 * vector with a lane of the float forms (rare: |x| > 80, nan, x + eps <= 0) gives its losses rounded to float,
 * as the velem */
FL_INLINE void fl__vterms_wide(fl_vd *ld, const fl_vf *loss, const fl_vfi *fin, const int n)
{
    fl_vfi all = (fl_vfi){0} - 1;
    FL__EACH(j, n) all &= fin[j];
    if (__builtin_expect(fl__any_lane(~all), 0))
        FL__EACH(j, n) fl__vf_widen(fl__vf_blend(fin[j], fl__vf_narrow(ld[j], ld[n + j]), loss[j]), &ld[j], &ld[n + j]);
}
/* the same losses in double (FL_PAIR_KERNEL_VD), or with err the log form's float ones */
FL_INLINE void fl_poisson_nll_velemd(const fl_vf *x, const fl_vf *y, fl_vd *ld, fl_vf *dloss, fl_vf *d2loss,
                                     float eps, int flag, fl_vf *err, const int n)
{
    fl_vf loss[FL__XU];
    fl_vfi fin[FL__XU];
    fl__poisson_nll_vterms(x, y, loss, ld, fin, dloss, d2loss, eps, flag, err, n);
    fl__vterms_wide(ld, loss, fin, n);
}

/* gaussian_nll: v = var (clamped to eps = param; nan kept), flag: full, and FL_VELEM3_SUM_ONLY. Where losses are
 * stored, each 0.5 (log v + d^2 / v) in double, rounded once, where v is a float within 2^-126 .. 2^126 (log v can
 * cancel d^2 / v: float roundings of the two terms were most of the loss there, 20,000 float32 eps in the worst of
 * 100,000 elements): log v by fl__vlog_pos_any_f64_n, 1 / v from the float quotient by two Newton steps (within an
 * ulp of double; a division of doubles is 4-8x the cost), d = x - y in double. Other lanes, and every lane where
 * the losses are only summed: the float log (inf, nan, 0 and subnormals as they are), the rest in float as
 * before. A sum averages the float terms' roundings out (100,000 elements of either sign: within 0.4 float32 eps
 * of the exact sum, as the double terms'), and the double form costs 2-3x: 10M float32, 2 threads, loss alone
 * 2.7 -> 5.7 ms at AVX-512, 3.4 -> 9.7 at AVX2, against JAX's float form's 8.8 / 9.9 (a float pair log and a
 * double one where the loss is below 2^-9: no faster). The derivatives in float. */
/* the float form: 0.5 (log v + d^2 inv) (+ 0.5 log(2 pi) if full), v the clamped var, inv = 1 / v; with dquot,
 * d^2 / v in double (its float form overflows first), a division: as the element form */
FL_INLINE void fl__gaussian_float_loss(const fl_vf *x, const fl_vf *y, const fl_vf *vv, const fl_vf *inv, float eps,
                                       int full, const int dquot, fl_vf *loss, const int n)
{
    fl_vf lg[FL__XU];
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
        const fl_vf d = x[j] - y[j];
        if (!dquot) {
            loss[j] = 0.5f * (lg[j] + d * d * inv[j]) + (full ? 0.91893853320467274178f : 0.0f);
            continue;
        }
        fl_vd xd[2], yd[2], vd[2], ld[2], t[2];
        fl__vf_widen(x[j], &xd[0], &xd[1]);
        fl__vf_widen(y[j], &yd[0], &yd[1]);
        fl__vf_widen(vv[j], &vd[0], &vd[1]);
        fl__vf_widen(lg[j], &ld[0], &ld[1]);
        for (int h = 0; h < 2; h++) {
            const fl_vd dd = xd[h] - yd[h];
            t[h] = 0.5 * (ld[h] + dd * dd * (1.0 / vd[h])) + (full ? 0.91893853320467274178 : 0.0);
        }
        loss[j] = fl__vf_narrow(t[0], t[1]);
    }
}
FL_INLINE void fl_gaussian_nll_velem(const fl_vf *x, const fl_vf *y, const fl_vf *v, fl_vf *loss, fl_vf *dloss,
                                     fl_vf *d2loss, float eps, float param2, int flag, const int n)
{
    (void)param2;
    const int full = flag & ~FL_VELEM3_SUM_ONLY;
    fl_vf vv[FL__XU];
    fl_vfi in[FL__XU], all = (fl_vfi){0} - 1;
    FL__EACH(j, n) {
        vv[j] = fl__vf_blend(v[j] < eps, (fl_vf){0} + eps, v[j]);
        const fl_vf d = x[j] - y[j], inv = 1.0f / vv[j];
        dloss[j] = d * inv;
        d2loss[j] = inv;
        in[j] = (vv[j] >= 0x1p-126f) & (vv[j] <= 0x1p126f);
        all &= in[j];
    }
    if (!(flag & FL_VELEM3_SUM_ONLY)) {
        fl_vd lv[2 * FL__XU];
        FL__EACH(j, n) fl__vf_widen(fl__vf_blend(in[j], vv[j], (fl_vf){0} + 1.0f), &lv[j], &lv[n + j]);
        fl__vlog_pos_any_f64_n(lv, 2 * n);
        FL__EACH(j, n) {
            fl_vd xd[2], yd[2], vd[2], id[2], t[2];
            fl__vf_widen(x[j], &xd[0], &xd[1]);
            fl__vf_widen(y[j], &yd[0], &yd[1]);
            fl__vf_widen(fl__vf_blend(in[j], vv[j], (fl_vf){0} + 1.0f), &vd[0], &vd[1]);
            fl__vf_widen(fl__vf_blend(in[j], d2loss[j], (fl_vf){0} + 1.0f), &id[0], &id[1]);
            for (int h = 0; h < 2; h++) {
                const fl_vd one = (fl_vd){0} + 1.0, dd = xd[h] - yd[h];
                fl_vd i = id[h];
                i = FL__VDFMA(i, FL__VDFMA(0.0 - vd[h], i, one), i); /* 2^-24 -> 2^-48 */
                i = FL__VDFMA(i, FL__VDFMA(0.0 - vd[h], i, one), i); /* -> an ulp */
                t[h] = 0.5 * (lv[h * n + j] + dd * dd * i) + (full ? 0.91893853320467274178 : 0.0);
            }
            loss[j] = fl__vf_narrow(t[0], t[1]);
        }
        if (__builtin_expect(fl__any_lane(~all), 0)) {
            fl_vf lf[FL__XU];
            fl__gaussian_float_loss(x, y, vv, d2loss, eps, full, 1, lf, n);
            FL__EACH(j, n) loss[j] = fl__vf_blend(in[j], loss[j], lf[j]);
        }
        return;
    }
    fl__gaussian_float_loss(x, y, vv, d2loss, eps, full, 0, loss, n);
}

/* power p = param; flag: FL_TWEEDIE_* (a branch per step); d/dx as e1 (exp(x) - y), that in double. At p = 1 and
 * 2 the losses in double in the lanes fin (ld, as fl__poisson_nll_vterms) and the float forms' in loss elsewhere,
 * 1 returned; else the float losses in loss, 0 returned. err: NULL, or p = 1's float form (poisson_nll's), the
 * others' 0. */
FL_INLINE int fl__tweedie_vterms(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vd *ld, fl_vfi *fin, fl_vf *dloss,
                                 fl_vf *d2loss, float p, int flag, fl_vf *err, const int n)
{
    fl_vf e2[FL__XU], e1[FL__XU];
    if (err) FL__EACH(j, n) err[j] = (fl_vf){0};
    if (flag == FL_TWEEDIE_POISSON) { /* exp(x) - y x: poisson_nll's with log_input */
        fl__poisson_nll_vterms(x, y, loss, ld, fin, dloss, d2loss, 0.0f, FL_POISSON_LOG_INPUT, err, n);
        return 1;
    }
    if (flag == FL_TWEEDIE_GAMMA) {
        /* x + y e, 1 - y e, y e with e = exp(-x), each in double and rounded once where |x| <= 80 (x + y e crosses
         * 0 where y < 1/e, 1 - y e at the optimum: their float forms' roundings were most of them there), one
         * double exp for the three (where there was a float exp and a double one for the gradient); the float
         * forms elsewhere */
        fl_vd e[2 * FL__XU];
        fl_vfi all = (fl_vfi){0} - 1;
        FL__EACH(j, n) e1[j] = -x[j];
        fl__vexp_widened_f64(e1, e, fin, n);
        FL__EACH(j, n) {
            fl_vd x0, x1, y0, y1;
            fl__vf_widen(x[j], &x0, &x1);
            fl__vf_widen(y[j], &y0, &y1);
            const fl_vd ye0 = y0 * e[j], ye1 = y1 * e[n + j];
            ld[j] = x0 + ye0, ld[n + j] = x1 + ye1;
            loss[j] = (fl_vf){0};
            dloss[j] = fl__vf_narrow(1.0 - ye0, 1.0 - ye1);
            d2loss[j] = fl__vf_narrow(ye0, ye1);
            all &= fin[j];
        }
        if (__builtin_expect(fl__any_lane(~all), 0)) {
            fl__vexp_mid_f32_n(e1, n);
            FL__EACH(j, n) {
                const fl_vf ye = y[j] * e1[j];
                loss[j] = x[j] + ye;
                dloss[j] = fl__vf_blend(fin[j], dloss[j], 1.0f - ye);
                d2loss[j] = fl__vf_blend(fin[j], d2loss[j], ye);
            }
        }
        return 1;
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
    return 0;
}
FL_INLINE void fl_tweedie_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float p,
                                int flag, const int n)
{
    fl_vd ld[2 * FL__XU];
    fl_vfi fin[FL__XU];
    if (fl__tweedie_vterms(x, y, loss, ld, fin, dloss, d2loss, p, flag, NULL, n))
        FL__EACH(j, n) loss[j] = fl__vf_blend(fin[j], fl__vf_narrow(ld[j], ld[n + j]), loss[j]);
}
/* the same losses in double (FL_PAIR_KERNEL_VD): at p = 1 and 2 as they are (with err, p = 1's float form),
 * else the float ones widened (err 0: the float losses are the velem's, in the sum as they were) */
FL_INLINE void fl_tweedie_velemd(const fl_vf *x, const fl_vf *y, fl_vd *ld, fl_vf *dloss, fl_vf *d2loss, float p,
                                 int flag, fl_vf *err, const int n)
{
    fl_vf loss[FL__XU];
    fl_vfi fin[FL__XU];
    if (fl__tweedie_vterms(x, y, loss, ld, fin, dloss, d2loss, p, flag, err, n)) fl__vterms_wide(ld, loss, fin, n);
    else FL__EACH(j, n) fl__vf_widen(loss[j], &ld[j], &ld[n + j]);
}
#endif

#define FL_TEMPLATE "regression_tpl.h"
#include "each_dtype.h"
