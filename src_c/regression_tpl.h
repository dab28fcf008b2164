/* regression_tpl.h -- the regression kernels for one input dtype. Included by regression.c through
 * each_dtype.h (S, T, FL_LD, FL_ST, FL_T, FL_TC: see there). */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include regression_tpl.h through each_dtype.h"
#endif

/* The per-element math, in T: from the input x and target y it sets the loss, d loss / d x and (the losses that
 * have NAME_grad_hess) d^2 loss / d x^2 of one element, before sample weighting. d = x - y. */

/* mse: d^2; d/dx = 2 d; d2/dx2 = 2. */
FL_INLINE void FL_T(fl_mse_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    (void)a;
    const T d = x - y;
    *loss = d * d;
    *dloss = 2 * d;
    *d2loss = 2;
}

/* l1: |d|; d/dx = sign(d) with sign(0) = 0 (torch's sgn), and nan for a nan d. */
FL_INLINE void FL_T(fl_l1_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss)
{
    (void)a;
    const T d = x - y;
    *loss = d < 0 ? -d : d;
    *dloss = d > 0 ? 1 : d < 0 ? -1 : d == 0 ? 0 : d;
}

/* huber (delta = a->param > 0, already rounded to T): 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)
 * (torch's huber_loss); d/dx = clamp(d, -delta, delta), continuous at |d| = delta; d2/dx2 = 1 where |d| < delta,
 * else 0 (not floored: that is the boosting adapters' business); nan stays nan in all three. */
FL_INLINE void FL_T(fl_huber_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    const T d = x - y, ad = d < 0 ? -d : d, delta = (T)a->param;
    *loss = ad < delta ? (T)0.5 * d * d : delta * (ad - (T)0.5 * delta);
    *dloss = d < -delta ? -delta : d > delta ? delta : d;
    *d2loss = ad < delta ? 1 : ad >= delta ? 0 : d;
}

/* smooth_l1 (beta = a->param >= 0, rounded to T), torch's: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta
 * (beta = 0: |d|, as torch's l1 branch); d/dx = d / beta inside, sign(d) outside (sign(0) = 0); d2/dx2 = 1 / beta
 * inside, 0 outside (and for beta = 0); nan stays nan. */
FL_INLINE void FL_T(fl_smooth_l1_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    const T d = x - y, ad = d < 0 ? -d : d, beta = (T)a->param;
    const int in = ad < beta;
    *loss = in ? (T)0.5 * d * d / beta : ad - (T)0.5 * beta;
    *dloss = in ? d / beta : d > 0 ? 1 : d < 0 ? -1 : d;
    *d2loss = in ? 1 / beta : ad >= beta ? 0 : d;
}

/* log_cosh: log(cosh(d)), stable for any d. With a = |d|:
 *   a < 1:  log1p(u^2 / (2 (1 + u))), u = expm1(a)   (cosh a - 1 = u^2 / (2 e^a): full relative accuracy near 0,
 *           where a - log 2 + log1p(e^-2a) is a cancellation)
 *   a >= 1: a - log 2 + log1p(t), t = exp(-2a)       (no overflow; a = inf gives inf)
 * d/dx = tanh(d) = sign(d) u (u + 2) / (u^2 + 2 u + 2) (a < 1), sign(d) (1 - t) / (1 + t) (a >= 1);
 * d2/dx2 = 1 - tanh^2 (a < 1, where tanh^2 < 0.6), 4 t / (1 + t)^2 (a >= 1, without the cancellation). */
FL_INLINE void FL_T(fl_log_cosh_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    (void)a;
    const T d = x - y, ad = d < 0 ? -d : d;
    const int big = !(ad < 1); /* nan goes this way: every result nan */
    const T u = FL_TC(fl_expm1)(big ? 1 : ad), e = FL_TC(fl_exp)(-ad), t = e * e;
    const T th = big ? (1 - t) / (1 + t) : u * (u + 2) / (u * u + 2 * u + 2);
    *loss = FL_TC(fl_log1p)(big ? t : u * u / (2 + 2 * u)) + (big ? ad - (T)0.69314718055994530942 : 0);
    *dloss = d < 0 ? -th : th;
    *d2loss = big ? 4 * t / ((1 + t) * (1 + t)) : 1 - th * th;
}

/* pinball (quantile q = a->param in (0, 1)): q max(y - x, 0) + (1 - q) max(x - y, 0), scikit-learn's
 * mean_pinball_loss; d/dx = 1 - q where d > 0, -q where d <= 0 (scikit-learn's PinballLoss gradient); no
 * second derivative (0 almost everywhere). */
FL_INLINE void FL_T(fl_pinball_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss)
{
    const T d = x - y, q = (T)a->param;
    *loss = d > 0 ? (1 - q) * d : q * (y - x); /* (y - x, not -d: +0 where x = y) */
    *dloss = d > 0 ? 1 - q : d <= 0 ? -q : d;
}

/* exp(x) - y x, d/dx = exp(x) - y, d2/dx2 = exp(x) (poisson_nll with log_input, tweedie at power 1): where |x| <=
 * 80, each in double (y x exact for float data), the loss as the double *ld, 1 returned; else the T forms, 0
 * returned (see fl__poisson_log_velem) */
FL_INLINE int FL_T(fl_exp_minus_yx_elem)(T x, T y, double *ld, T *loss, T *dloss, T *d2loss)
{
    if ((x < 0 ? -x : x) <= 80) {
        const double e = fl_exp_f64(x);
        *ld = e - (double)y * x;
        *loss = (T)*ld;
        *dloss = (T)(e - y);
        *d2loss = (T)e;
        return 1;
    }
    const T e = FL_TC(fl_exp)(x);
    *loss = e - y * x;
    *dloss = e - y;
    *d2loss = e;
    return 0;
}

/* poisson_nll (torch's; eps = a->param): log_input: exp(x) - y x, d/dx = exp(x) - y, d2/dx2 = exp(x);
 * else x - y log(x + eps), d/dx = 1 - y / (x + eps), d2/dx2 = y / (x + eps)^2. full adds Stirling's term
 * y log y - y + 0.5 log(2 pi y) where y > 1 (a constant in x). The loss in double where its terms are finite (|x|
 * <= 80; x + eps, in double, positive and finite), rounded once: see fl_poisson_nll_velem; *wide: the same
 * before its rounding (the reductions' term, as fl_poisson_nll_velemd's). */
FL_INLINE void FL_T(fl_poisson_nll_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss,
                                         double *wide)
{
    const T eps = (T)a->param;
    double ld = 0;
    int fin;
    if (a->flag & FL_POISSON_LOG_INPUT) {
        fin = FL_T(fl_exp_minus_yx_elem)(x, y, &ld, loss, dloss, d2loss);
    } else {
        const T u = x + eps, inv = 1 / u;
        const double t = (double)x + eps; /* x + eps in double, for the loss's log too (as the vector form) */
        fin = x > -eps && x < INFINITY;
        ld = fin ? (double)x - (double)y * fl_log_f64(t) : 0;
        *loss = fin ? (T)ld : x - y * FL_TC(fl_log)(u);
        /* g = (x + eps - y) / (x + eps), the numerator exact in double */
        *dloss = (t < 0 ? -t : t) == INFINITY ? 1 - y * inv : (T)((t - y) * inv); /* inf * 0 there: the plain form */
        *d2loss = y * inv * inv;
    }
    if (a->flag & FL_POISSON_FULL && y > 1) {
        const double l = y < INFINITY ? fl_log_f64(y) : 0, st = (double)y * l - y + 0.5 * (l + 1.83787706640934548356);
        ld += st;
        *loss += (T)st;
    }
    if (fin) *loss = (T)ld;
    *wide = fin ? ld : (double)*loss;
}

/* gaussian_nll (torch's; eps = a->param, var v = a->v[k] clamped to eps, as torch): 0.5 (log v + d^2 / v)
 * (+ 0.5 log(2 pi) if full); d/dx = d / v; d2/dx2 = 1 / v. A nan v stays nan (the clamp keeps it). The loss in
 * double, rounded once (log v and d^2 / v can cancel: see fl_gaussian_nll_velem). */
FL_INLINE void FL_T(fl_gaussian_nll_elem)(T x, T y, T v, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    const T eps = (T)a->param, vv = v < eps ? eps : v, d = x - y, inv = 1 / vv;
    const double dd = (double)x - (double)y;
    *loss = (T)(0.5 * (fl_log_f64(vv) + dd * dd * (1.0 / vv)) + (a->flag ? 0.91893853320467274178 : 0));
    *dloss = d * inv;
    *d2loss = inv;
}

/* tweedie (power p = a->param in [1, 2]; flag FL_TWEEDIE_*), scikit-learn's HalfTweedieLoss with log link
 * (raw x, constant terms dropped):
 *   p = 1: exp(x) - y x,                                  d/dx = exp(x) - y,          d2 = exp(x)
 *   p = 2: x + y exp(-x),                                 d/dx = 1 - y exp(-x),       d2 = y exp(-x)
 *   else:  exp((2-p) x) / (2-p) - y exp((1-p) x) / (1-p), d/dx = e2 - y e1,  d2 = (2-p) e2 - (1-p) y e1,
 *          with e2 = exp((2-p) x), e1 = exp((1-p) x).
 * Where |x| <= 80: at p = 1 and 2 the loss and both derivatives from one exp in double, each rounded once (the
 * loss crosses 0, the gradient cancels at the optimum); else d/dx as e1 (exp(x) - y), exp(x) - y in double.
 * *wide: the loss before its rounding to T (the reductions' term, as fl_tweedie_velemd's). */
FL_INLINE void FL_T(fl_tweedie_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss, double *wide)
{
    const T p = (T)a->param;
    if (a->flag == FL_TWEEDIE_POISSON) {
        double ld;
        *wide = FL_T(fl_exp_minus_yx_elem)(x, y, &ld, loss, dloss, d2loss) ? ld : (double)*loss;
        return;
    }
    const int near = (x < 0 ? -x : x) <= 80;
    *wide = 0.0;
    if (a->flag == FL_TWEEDIE_GAMMA) { /* in double where |x| <= 80: see fl_tweedie_velem */
        if (near) {
            const double ye = (double)y * fl_exp_f64(-x);
            *wide = x + ye;
            *loss = (T)*wide;
            *dloss = (T)(1 - ye);
            *d2loss = (T)ye;
        } else {
            const T ye = y * FL_TC(fl_exp)(-x);
            *loss = x + ye;
            *dloss = 1 - ye;
            *d2loss = ye;
            *wide = *loss;
        }
        return;
    }
    /* d/dx as e1 (exp(x) - y), that in double, where |x| <= 80: see fl__exp_minus_y_f64 */
    const double dd = near ? fl_exp_f64(x) - y : 0;
    const T e2 = FL_TC(fl_exp)((2 - p) * x), e1 = FL_TC(fl_exp)((1 - p) * x), ye1 = y * e1;
    *loss = e2 / (2 - p) - ye1 / (1 - p);
    *dloss = near ? (T)(dd * e1) : e2 - ye1;
    *d2loss = (2 - p) * e2 - (1 - p) * ye1;
    *wide = *loss;
}

FL_PAIR_KERNEL_V(FL_T(fl_mse), T, 0, FL_T(fl_mse_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t), fl_mse_velem)
FL_PAIR_KERNEL_V(FL_T(fl_l1), T, 0, FL_T(fl_l1_elem)(xv, yv, a, &loss_t, &dloss_t), fl_l1_velem)
FL_PAIR_KERNEL_V(FL_T(fl_huber), T, 0, FL_T(fl_huber_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t), fl_huber_velem)
FL_PAIR_KERNEL_V(FL_T(fl_smooth_l1), T, 0, FL_T(fl_smooth_l1_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t),
                 fl_smooth_l1_velem)
FL_PAIR_KERNEL_V(FL_T(fl_log_cosh), T, 0, FL_T(fl_log_cosh_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t),
                 fl_log_cosh_velem)
FL_PAIR_KERNEL_V(FL_T(fl_pinball), T, 0, FL_T(fl_pinball_elem)(xv, yv, a, &loss_t, &dloss_t), fl_pinball_velem)
FL_PAIR_KERNEL_VD(FL_T(fl_poisson_nll), T, 0,
                  (FL_T(fl_poisson_nll_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t, &loss_w), has_w = 1),
                  fl_poisson_nll_velem, fl_poisson_nll_velemd, a->flag & FL_POISSON_LOG_INPUT)
/* the third input, var, read here by index (k: FL_LANE_LOOP's), in the dtype of x; by the vector form as v */
FL_PAIR_KERNEL_V3(FL_T(fl_gaussian_nll), T, FL_CHECK_VAR,
                  FL_T(fl_gaussian_nll_elem)(xv, yv, FL_LD(((const S *)a->v)[k]), a, &loss_t, &dloss_t, &d2loss_t),
                  fl_gaussian_nll_velem, 1)
FL_PAIR_KERNEL_VD(FL_T(fl_tweedie), T, FL_CHECK_TWEEDIE,
                  (FL_T(fl_tweedie_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t, &loss_w), has_w = 1),
                  fl_tweedie_velem, fl_tweedie_velemd, a->flag == FL_TWEEDIE_POISSON)
