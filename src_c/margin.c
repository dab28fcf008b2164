/* margin.c -- the margin losses: binary (zero-one, logistic, exponential, hinge; pair kernels over (score, label)
 * with labels in {-1, +1}) and multiclass (multiclass hinge, top-1 zero-one; row kernels over rows of class
 * scores with integer targets). Compiled once per SIMD level; the kernels are written once in margin_tpl.h.
 *
 * The per-element math below is dtype-free: the pair driver (FL_PAIR_KERNEL, common.h) hands it the score x and
 * the label y as doubles and it sets the loss and d loss / d x, before sample weighting. m = y x is the margin. */
#include "common.h"
#include "vmath.h"

/* zero-one: the predicted label is +1 where x > 0, else -1 (a nan score predicts -1); no gradient. */
FL_INLINE void fl_zero_one_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    (void)a;
    *loss = (double)((x > 0.0) != (y > 0.0)); /* for y in {-1, +1}; branch-free (random signs mispredict) */
    *dloss = 0.0;
}

/* logistic: log(1 + exp(-m)) = max(-m, 0) + log1p(exp(-|m|)). exp never overflows (its argument is <= 0), and
 * for m >> 0 the result is exp(-m) to full relative accuracy (no 1 + tiny rounded away); m = -inf gives +inf.
 * d/dx = -y sigmoid(-m), with sigmoid(-m) = 1 / (1 + e) for m < 0 and e / (1 + e) otherwise, e = exp(-|m|). */
FL_INLINE void fl_logistic_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    (void)a;
    const double m = y * x, e = fl_exp_f64(-fabs(m));
    *loss = (m < 0.0 ? -m : 0.0) + fl_log1p_f64(e);
    *dloss = -y * (m < 0.0 ? 1.0 : e) / (1.0 + e);
}

/* exponential: exp(-m); d/dx = -y exp(-m). */
FL_INLINE void fl_exponential_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    (void)a;
    const double e = fl_exp_f64(-y * x);
    *loss = e;
    *dloss = -y * e;
}

/* hinge: h = max(0, z), z = margin - m (a->param); squared (a->flag): h^2. d/dx = -y (squared: -2 y z) where
 * z > 0 and 0 where z <= 0, the kink included: torch's subgradient of relu(z) (threshold_backward). A nan z
 * gives a nan loss, and passes the gradient through as relu does. */
FL_INLINE void fl_hinge_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    const double z = a->param - y * x;
    const double h = z <= 0.0 ? 0.0 : z;
    *loss = a->flag ? h * h : h;
    *dloss = z <= 0.0 ? 0.0 : -y * (a->flag ? 2.0 * z : 1.0);
}

#define FL_TEMPLATE "margin_tpl.h"
#include "each_dtype.h"
