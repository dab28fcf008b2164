/* each_dtype.h -- instantiates a family's template header once per input dtype:
 *     #define FL_TEMPLATE "margin_tpl.h"
 *     #include "each_dtype.h"
 * includes FL_TEMPLATE four times, with
 *   S         the storage type of the input arrays (what the kernel reads)
 *   T         the compute type, which is also the type of every output (losses, gradients, softmax)
 *   FL_LD(v)  a value v of type S as T
 *   FL_ST     the storage kind (vmath.h: FL_ST_F32, FL_ST_F16, FL_ST_BF16, FL_ST_F64)
 *   FL_T(n)   n with the input dtype's suffix (n_f32, n_f64, n_f16, n_bf16)
 *   FL_TC(n)  n with the compute type's suffix (n_f32, n_f64): vmath.h's functions of T
 * float32 and float64 are read and computed as they are; float16 and bfloat16 are read 2 bytes an element and
 * computed in float (the conversion is exact), so a half kernel is the float kernel with another load. */
#ifndef FL_TEMPLATE
#error "define FL_TEMPLATE (the template header to instantiate) before including each_dtype.h"
#endif

#define T float
#define S float
#define FL_LD(v) (v)
#define FL_ST FL_ST_F32
#define FL_T(name) FL_CAT(name, f32)
#define FL_TC(name) FL_CAT(name, f32)
#include FL_TEMPLATE
#undef T
#undef S
#undef FL_LD
#undef FL_ST
#undef FL_T
#undef FL_TC

#define T double
#define S double
#define FL_LD(v) (v)
#define FL_ST FL_ST_F64
#define FL_T(name) FL_CAT(name, f64)
#define FL_TC(name) FL_CAT(name, f64)
#include FL_TEMPLATE
#undef T
#undef S
#undef FL_LD
#undef FL_ST
#undef FL_T
#undef FL_TC

#define T float
#define S uint16_t
#define FL_LD(v) fl_f16_to_f32(v)
#define FL_ST FL_ST_F16
#define FL_T(name) FL_CAT(name, f16)
#define FL_TC(name) FL_CAT(name, f32)
#include FL_TEMPLATE
#undef T
#undef S
#undef FL_LD
#undef FL_ST
#undef FL_T
#undef FL_TC

#define T float
#define S uint16_t
#define FL_LD(v) fl_bf16_to_f32(v)
#define FL_ST FL_ST_BF16
#define FL_T(name) FL_CAT(name, bf16)
#define FL_TC(name) FL_CAT(name, f32)
#include FL_TEMPLATE
#undef T
#undef S
#undef FL_LD
#undef FL_ST
#undef FL_T
#undef FL_TC

#undef FL_TEMPLATE
