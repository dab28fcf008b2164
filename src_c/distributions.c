/* distributions.c -- entropy, categorical_cross_entropy and kl_divergence over rows of probabilities, and the
 * element-wise binary_cross_entropy_with_logits and kl_div; compiled once per SIMD level, the kernels written
 * once in distributions_tpl.h. The per-element math below is dtype-free: every element is widened to double,
 * computed in double and rounded once, so a float32 result is as good as float32 can hold. */
#include "common.h"
#include "vmath.h"

/* ---- the term of one entry (p, q) of a row, by kind ------------------------------------------------------ */
enum { FL_DIST_ENTROPY = 0, FL_DIST_CROSS_ENTROPY = 1, FL_DIST_KL = 2 };
#define FL_DIST_CHUNK 512  /* elements of a float row widened to double at a time */
#define FL_ONES_8 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0
#define FL_ONES_64 FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8
static const double fl_dist_ones[FL_DIST_CHUNK] = {FL_ONES_64, FL_ONES_64, FL_ONES_64, FL_ONES_64,
                                                   FL_ONES_64, FL_ONES_64, FL_ONES_64, FL_ONES_64};

/* Edge cases, as scipy.special (entr, xlogy, rel_entr): nan in gives nan; 0 log 0 = 0 (and 0 log q = 0 for any
 * q >= 0); q = 0 < p gives +inf. Negative entries are reported by the row loop, their term is not used. */
FL_INLINE double fl_dist_term(int kind, double p, double q)
{
    /* every case computed, then selected: no branch, so the row loop vectorises */
    const double zero_p = q != q ? q : 0.0;                                 /* 0 log q = 0, but nan stays nan */
    if (kind == FL_DIST_ENTROPY) {                                          /* entr(p) = -p log p */
        const double t = -p * fl_log_f64(p);
        return p == 0.0 ? 0.0 : t;
    }
    if (kind == FL_DIST_CROSS_ENTROPY) {                                    /* -xlogy(p, q): q = 0 < p: +inf */
        const double t = -p * fl_log_f64(q);
        return p == 0.0 ? zero_p : t;
    }
    /* rel_entr(p, q) = p log(p / q); the ratio in double cannot overflow for float data; q = 0 < p: +inf */
    const double t = p * fl_log_f64(p / q);
    const double r = q == 0.0 ? (p == p ? INFINITY : p) : t;
    return p == 0.0 ? zero_p : r;
}

/* ---- kl_divergence of float rows, in float vectors --------------------------------------------------------
 * The double path below divides twice per element (p / q, and inside fdlibm's log): ~10 ns an element. Here, in
 * float: r = p / q rounded, e = p - r q exactly (one FMA), so log(p / q) = log r + e / (r q) + O(2^-46): the term
 * p log(p / q) is within ~2 ulp of itself, and the sums (of the terms and of their absolute values) are in
 * double. The row's error is then at most ~2 ulp of sum |term|: when that is more than 4 times |sum term| (rows
 * whose terms cancel, p ~ q), the row is computed again the double way; so is a row with anything but p >= 0,
 * q > 0 finite (zeros of q, negatives to report, nan, inf) or a ratio outside float's normal range. p = 0 gives
 * a term of 0, as rel_entr. Returns 0 where the double path must do the row. Levels with FMA only: without it
 * the residual is not exact (the scalar level takes the double path). */
#if defined(FL_VF_N) && defined(__FMA__)
#if defined(__AVX512DQ__) && FL_VF_N == 16
/* With AVX-512, p = 0 is a mask register and the selects on it single instructions (gcc made two or three of
 * each from the generic vector code), and the flags below are taken by class (vfpclassps): the compares and
 * their or-ing were a fifth of the loop's instructions. p: nan, +-inf, subnormal or negative; q: anything but
 * a positive normal number; r (where p != 0): +0, subnormal or +inf. */
typedef __mmask16 fl__kl_mask;
#define FL__KL_ZERO(pv) _mm512_cmp_ps_mask((__m512)(pv), _mm512_setzero_ps(), _CMP_EQ_OQ)
#define FL__KL_SEL(m, a, b) ((fl_vf)_mm512_mask_blend_ps((m), (__m512)(b), (__m512)(a)))           /* m ? a : b */
#define FL__KL_MUL_UNLESS(m, a, b) ((fl_vf)_mm512_maskz_mul_ps((__mmask16)~(m), (__m512)(a), (__m512)(b)))
#define FL__KL_SPECIAL(pv, qv, r, pz)                                                                    \
    (_mm512_fpclass_ps_mask((__m512)(pv), 0xF9) | _mm512_fpclass_ps_mask((__m512)(qv), 0xFF) |           \
     _mm512_mask_fpclass_ps_mask((__mmask16)~(pz), (__m512)(r), 0x2A))
#else
typedef fl_vfi fl__kl_mask;
#define FL__KL_ZERO(pv) ((pv) == 0.0f)
#define FL__KL_SEL(m, a, b) fl__vf_blend((m), (a), (b))
#define FL__KL_MUL_UNLESS(m, a, b) fl__vf_blend((m), (fl_vf){0}, (a) * (b))                     /* m ? 0 : a b */
#endif

FL_INLINE int fl_kl_row_float_vec(const void *p, const void *q, fl_index n, double *out, const int st)
{
#ifdef FL__KL_SPECIAL
    __mmask16 special_k = 0;
#endif
    fl_vd slo = (fl_vd){0}, shi = slo;
    fl_vf abs_acc = (fl_vf){0}; /* sum |term| only decides whether the row cancels: float is enough */
    fl_vfi special = (fl_vfi){0};
    const fl_vf zero = (fl_vf){0}, one = zero + 1.0f;
    for (fl_index j = 0; j < n; j += FL_VF_N) {
        fl_vf pv = zero, qv = one;     /* the tail padded with p = 0 (a term of 0) */
        if (j + FL_VF_N <= n) {
            pv = fl__vf_load_st(p, j, st);
            qv = fl__vf_load_st(q, j, st);
        } else {
            float pb[FL_VF_N] = {0}, qb[FL_VF_N];
            for (int l = 0; l < FL_VF_N; l++) qb[l] = 1.0f;
            for (fl_index l = 0; l < n - j; l++) {
                pb[l] = fl_load_st(p, j + l, st);
                qb[l] = fl_load_st(q, j + l, st);
            }
            pv = fl__vf_load(pb);
            qv = fl__vf_load(qb);
        }
        /* correctly rounded (a reciprocal would be as fast here, but p = q must give r = 1 and a term of 0) */
        const fl_vf r = pv / qv;
        const fl__kl_mask pzero = FL__KL_ZERO(pv);
        /* anything the double path must do: p < 0, nan, inf or subnormal (the reciprocal of a subnormal is
         * inf: the term was nan), q <= 0, nan or inf, r outside the normal range */
#ifdef FL__KL_SPECIAL
        special_k |= FL__KL_SPECIAL(pv, qv, r, pzero);
#else
        special |= ~(pv >= 0.0f) | (pv == INFINITY) | ~(qv > 0.0f) | (qv == INFINITY) |
                   (~pzero & ((pv < 0x1p-126f) | (r < 0x1p-126f) | (r == INFINITY)));
#endif
        const fl_vf e = FL__VFMA(zero - r, qv, pv);             /* p - r q, exact */
        /* log(p / q) = log r + log1p(e / (r q)), e / (r q) ~ e / p <= 2^-24: a 1 / p within 1 ulp is plenty (a
         * rougher one is not: where log r ~ 1e-6, 2^-12 of the correction is 1e-5 of the term) */
        const fl_vf lr = fl__vlog_normal_f32(FL__KL_SEL(pzero, one, r), e * fl__vrcp_f32(FL__KL_SEL(pzero, one, pv)));
        const fl_vf term = FL__KL_MUL_UNLESS(pzero, pv, lr);
        fl__vf_add_widened(&slo, &shi, term);
        abs_acc += (fl_vf)((fl_vfi)term & 0x7fffffff);
    }
    int any = 0;
    for (int l = 0; l < FL_VF_N; l++) any |= special[l] != 0;
#ifdef FL__KL_SPECIAL
    any |= special_k != 0;
#endif
    if (any) return 0;
    slo += shi;
    double sum = 0.0, abs_sum = 0.0;
    for (int l = 0; l < FL_VD_N; l++) sum += slo[l];
    for (int l = 0; l < FL_VF_N; l++) abs_sum += (double)abs_acc[l];
    if (abs_sum > 4.0 * fabs(sum)) return 0;
    *out = sum;
    return 1;
}
#else
static inline int fl_kl_row_float_vec(const void *p, const void *q, fl_index n, double *out, int st)
{
    (void)p, (void)q, (void)n, (void)out, (void)st;
    return 0;
}
#endif

/* ---- one element of binary_cross_entropy_with_logits ------------------------------------------------------
 * torch's loss, with lw = 1 + (pw - 1) y and softplus(-x) = -log sigmoid(x) = log1p(exp(-|x|)) + max(-x, 0):
 *   loss = (1 - y) x + lw softplus(-x),        d loss / dx = lw sigmoid(x) - pw y,
 *   d2 loss / dx2 = lw sigmoid(x) sigmoid(-x) = lw e / (1 + e)^2,
 * computed in forms without cancellation, with e = exp(-|x|) (no overflow for any x):
 *   x >= 0:  loss = (1 - y) x + lw log1p(e),   d = ((1 - y) - pw y e) / (1 + e)
 *   x <  0:  loss = -pw y x + lw log1p(e),     d = (e (1 - y) - pw y) / (1 + e)
 * (torch's own form loses all of a loss of 4e-18 at x = -40, y = 0 to x + (-x + tiny), even in double).
 * Infinite x: torch's form, for its edge values: x = +inf with y = 1 and x = -inf give nan (0 * inf,
 * inf - inf); nan propagates. */
FL_INLINE double fl_bce_elem(double x, double y, double pw, int flag, double *dloss, double *d2loss)
{
    (void)flag;
    const double e = fl_exp_f64(-fabs(x)), l1p = fl_log1p_f64(e), inv = 1.0 / (1.0 + e);
    const double lw = 1.0 + (pw - 1.0) * y;
    const double stable = (x >= 0.0 ? (1.0 - y) * x : -pw * y * x) + lw * l1p;
    const double torch = (1.0 - y) * x + lw * (l1p + (x < 0.0 ? -x : 0.0));
    *dloss = (x >= 0.0 ? (1.0 - y) - pw * y * e : e * (1.0 - y) - pw * y) * inv;
    *d2loss = lw * e * inv * inv;
    return fabs(x) == INFINITY ? torch : stable;
}

/* The vector form (fl_velem_fn, common.h) of fl_bce_elem for float data without weight or pos_weight (lw = pw
 * = 1), the same forms, from e = exp(-|x|), log1p(e) and 1 / (1 + e) of vmath.h: loss = max(x, 0) - y x +
 * log1p(e). n vectors in lockstep. */
#ifdef FL_VF_N
FL_INLINE void fl_bce_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float param,
                            int flag, const int n)
{
    (void)param, (void)flag;
    fl_vf e[FL__XU], inv[FL__XU], l1p[FL__XU];
    FL__EACH(j, n) e[j] = (fl_vf)((fl_vfi)x[j] | INT32_MIN); /* -|x|: the sign bit set */
    fl__vexp_f32_n(e, n);
    fl__vlog1p_unit_f32_n(e, l1p, inv, n);
    FL__EACH(j, n) {
        const fl_vf y1 = 1.0f - y[j];
        const fl_vfi neg = x[j] < 0.0f;
        const fl_vfi inf = (fl_vfi)x[j] + (fl_vfi)x[j] == (fl_vfi)((fl_vf){0} + INFINITY) + (fl_vfi)((fl_vf){0} + INFINITY);
        const fl_vf stable = FL__VFMA(0.0f - y[j], x[j], fl__vf_blend(neg, (fl_vf){0}, x[j])) + l1p[j];
        const fl_vf torch = FL__VFMA(y1, x[j], fl__vf_blend(neg, l1p[j] - x[j], l1p[j]));
        loss[j] = fl__vf_blend(inf, torch, stable);
        dloss[j] = fl__vf_blend(neg, FL__VFMA(e[j], y1, 0.0f - y[j]), FL__VFMA(0.0f - y[j], e[j], y1)) * inv[j];
        d2loss[j] = e[j] * inv[j] * inv[j];
    }
}
#define FL_BCE_VELEM fl_bce_velem
#else
#define FL_BCE_VELEM NULL
#endif

/* ---- one element of kl_div (torch): x = log q; y = p, or log p with log_target -----------------------------
 *   loss = xlogy(y, y) - y x,  d/dx = -y;       log_target: loss = exp(y) (y - x),  d/dx = -exp(y)
 * (linear in x: d2/dx2 = 0). y = 0 gives 0 without log_target (unless x = -inf: 0 * inf = nan, as torch); a
 * negative y gives nan. */
FL_INLINE double fl_kl_div_elem(double x, double y, double pw, int log_target, double *dloss, double *d2loss)
{
    (void)pw;
    *d2loss = 0.0;
    if (log_target) {
        const double p = fl_exp_f64(y);
        *dloss = -p;
        return p * (y - x);
    }
    *dloss = -y;
    return (y == 0.0 ? 0.0 : y * fl_log_f64(y)) - y * x;
}

#define FL_TEMPLATE "distributions_tpl.h"
#include "each_dtype.h"
