/* regression.c -- the regression losses (mse, l1, huber; torch semantics) as pair kernels over (input, target).
 * Compiled once per SIMD level; the kernels are instantiated once per dtype in regression_tpl.h.
 * The per-element math is in regression_tpl.h, in the element type (sums in double). */
#include "common.h"

#define FL_TEMPLATE "regression_tpl.h"
#include "each_dtype.h"
