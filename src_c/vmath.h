/* vmath.h -- provisional: libm-backed versions of the vector math interface (replaced by the SIMD versions). */
#ifndef FASTLOSS_VMATH_H
#define FASTLOSS_VMATH_H
#include <math.h>
#if defined(__GNUC__) || defined(__clang__)
#define FL_VM_INLINE static inline __attribute__((always_inline))
#else
#define FL_VM_INLINE static inline
#endif
FL_VM_INLINE float fl_exp_f32(float x) { return expf(x); }
FL_VM_INLINE double fl_exp_f64(double x) { return exp(x); }
FL_VM_INLINE float fl_log_f32(float x) { return logf(x); }
FL_VM_INLINE double fl_log_f64(double x) { return log(x); }
FL_VM_INLINE float fl_log1p_f32(float x) { return log1pf(x); }
FL_VM_INLINE double fl_log1p_f64(double x) { return log1p(x); }
FL_VM_INLINE float fl_expm1_f32(float x) { return expm1f(x); }
FL_VM_INLINE double fl_expm1_f64(double x) { return expm1(x); }
FL_VM_INLINE double fl_sum_exp_shifted_f32(const float *x, long n, float shift)
{ double s = 0; for (long i = 0; i < n; i++) s += fl_exp_f32(x[i] - shift); return s; }
FL_VM_INLINE double fl_sum_exp_shifted_f64(const double *x, long n, double shift)
{ double s = 0; for (long i = 0; i < n; i++) s += fl_exp_f64(x[i] - shift); return s; }
FL_VM_INLINE float fl_max_f32(const float *x, long n)
{ float m = -INFINITY; int nan = 0; for (long i = 0; i < n; i++) { m = x[i] > m ? x[i] : m; nan |= x[i] != x[i]; } return nan ? NAN : m; }
FL_VM_INLINE double fl_max_f64(const double *x, long n)
{ double m = -INFINITY; int nan = 0; for (long i = 0; i < n; i++) { m = x[i] > m ? x[i] : m; nan |= x[i] != x[i]; } return nan ? NAN : m; }
#endif
