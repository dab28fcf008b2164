/* regression_tpl.h -- the regression kernels for one dtype. Included by regression.c once per dtype with these
 * defined (and #undef-ed after):
 *   T         the element type (float, double)
 *   FL_T(n)   n with the dtype suffix (n_f32, n_f64) */
#if !defined(T) || !defined(FL_T)
#error "define T and FL_T before including regression_tpl.h"
#endif

FL_PAIR_KERNEL(FL_T(fl_mse), T, 0, fl_mse_elem(xv, yv, a, &loss, &dloss))
FL_PAIR_KERNEL(FL_T(fl_l1), T, 0, fl_l1_elem(xv, yv, a, &loss, &dloss))
FL_PAIR_KERNEL(FL_T(fl_huber), T, 0, fl_huber_elem(xv, yv, a, &loss, &dloss))
