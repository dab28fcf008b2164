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

/* ---- one element of binary_cross_entropy_with_logits ------------------------------------------------------
 * torch's formula, with lw = 1 + (pw - 1) y and softplus(-x) = -log sigmoid(x) = log1p(exp(-|x|)) + max(-x, 0)
 * (no overflow for any x):
 *   loss = (1 - y) x + lw softplus(-x)
 *   d loss / dx = (1 - y) - lw (1 - sigmoid(x)) = lw sigmoid(x) - pw y
 * Edge values as torch: x = +inf with y = 1 and x = -inf give nan (0 * inf, inf - inf); nan propagates. */
FL_INLINE double fl_bce_elem(double x, double y, double pw, int flag, double *dloss)
{
    (void)flag;
    const double e = fl_exp_f64(-fabs(x));
    const double sp = fl_log1p_f64(e) + (x < 0.0 ? -x : 0.0);
    const double lw = 1.0 + (pw - 1.0) * y;
    const double sig = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    *dloss = lw * sig - pw * y;
    return (1.0 - y) * x + lw * sp;
}

/* ---- one element of kl_div (torch): x = log q; y = p, or log p with log_target -----------------------------
 *   loss = xlogy(y, y) - y x,  d/dx = -y;       log_target: loss = exp(y) (y - x),  d/dx = -exp(y)
 * y = 0 gives 0 without log_target (unless x = -inf: 0 * inf = nan, as torch); a negative y gives nan. */
FL_INLINE double fl_kl_div_elem(double x, double y, double pw, int log_target, double *dloss)
{
    (void)pw;
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
