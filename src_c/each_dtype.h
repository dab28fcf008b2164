/* each_dtype.h -- instantiates a family's template header once per dtype:
 *     #define FL_TEMPLATE "margin_tpl.h"
 *     #include "each_dtype.h"
 * includes FL_TEMPLATE with T = float, FL_T(name) = name_f32, then with T = double, FL_T(name) = name_f64. */
#ifndef FL_TEMPLATE
#error "define FL_TEMPLATE (the template header to instantiate) before including each_dtype.h"
#endif

#define T float
#define FL_T(name) FL_CAT(name, f32)
#include FL_TEMPLATE
#undef T
#undef FL_T

#define T double
#define FL_T(name) FL_CAT(name, f64)
#include FL_TEMPLATE
#undef T
#undef FL_T

#undef FL_TEMPLATE
