/* regression_tpl.h -- the regression kernels for one input dtype. Included by regression.c through
 * each_dtype.h (S, T, FL_LD, FL_ST, FL_T, FL_TC: see there). */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include regression_tpl.h through each_dtype.h"
#endif

/* The per-element math, in T: from the input x and target y it sets the loss and d loss / d x of one element,
 * before sample weighting. d = x - y. */

/* mse: d^2; d/dx = 2 d. */
FL_INLINE void FL_T(fl_mse_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss)
{
    (void)a;
    const T d = x - y;
    *loss = d * d;
    *dloss = 2 * d;
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
 * (torch's huber_loss); d/dx = clamp(d, -delta, delta), continuous at |d| = delta; nan stays nan. */
FL_INLINE void FL_T(fl_huber_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss)
{
    const T d = x - y, ad = d < 0 ? -d : d, delta = (T)a->param;
    *loss = ad < delta ? (T)0.5 * d * d : delta * (ad - (T)0.5 * delta);
    *dloss = d < -delta ? -delta : d > delta ? delta : d;
}

FL_PAIR_KERNEL_V(FL_T(fl_mse), T, 0, FL_T(fl_mse_elem)(xv, yv, a, &loss_t, &dloss_t), 1, fl_mse_velem)
FL_PAIR_KERNEL_V(FL_T(fl_l1), T, 0, FL_T(fl_l1_elem)(xv, yv, a, &loss_t, &dloss_t), 1, fl_l1_velem)
FL_PAIR_KERNEL_V(FL_T(fl_huber), T, 0, FL_T(fl_huber_elem)(xv, yv, a, &loss_t, &dloss_t), 1, fl_huber_velem)
