/* regression.c -- the regression losses (mse, l1, huber; torch semantics) as pair kernels over (input, target).
 * Compiled once per SIMD level; the kernels are instantiated once per dtype in regression_tpl.h.
 *
 * The per-element math is dtype-free: from the input x and target y as doubles it sets the loss and
 * d loss / d x of one element, before sample weighting. d = x - y. */
#include "common.h"

/* mse: d^2; d/dx = 2 d. */
FL_INLINE void fl_mse_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    (void)a;
    const double d = x - y;
    *loss = d * d;
    *dloss = 2.0 * d;
}

/* l1: |d|; d/dx = sign(d) with sign(0) = 0 (torch's sgn), and nan for a nan d. */
FL_INLINE void fl_l1_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    (void)a;
    const double d = x - y;
    *loss = fabs(d);
    *dloss = d > 0.0 ? 1.0 : d < 0.0 ? -1.0 : d == 0.0 ? 0.0 : d;
}

/* huber (delta = a->param > 0): 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (torch's huber_loss);
 * d/dx = clamp(d, -delta, delta), continuous at |d| = delta; nan stays nan. */
FL_INLINE void fl_huber_elem(double x, double y, const fl_pair_args *a, double *loss, double *dloss)
{
    const double d = x - y, ad = fabs(d), delta = a->param;
    *loss = ad < delta ? 0.5 * d * d : delta * (ad - 0.5 * delta);
    *dloss = d < -delta ? -delta : d > delta ? delta : d;
}

#define FL_TEMPLATE "regression_tpl.h"
#include "each_dtype.h"
