/* Vectorisation probe: compile with -fopt-info-vec-optimized (see build.sh).
 * Lines 6-13: map loops; line 14: naive double-sum softmax reduction (expected
 * NOT loop-vectorised without -ffast-math); 15-18: the vmath.h helpers. */
#include "vmath.h"
#define MAP(name, T, fn) void name(const T* restrict a, T* restrict b, long n) { for (long i=0;i<n;i++) b[i]=fn(a[i]); }
MAP(map_exp_f32, float, fl_exp_f32)
MAP(map_exp_f64, double, fl_exp_f64)
MAP(map_log_f32, float, fl_log_f32)
MAP(map_log_f64, double, fl_log_f64)
MAP(map_log1p_f32, float, fl_log1p_f32)
MAP(map_log1p_f64, double, fl_log1p_f64)
MAP(map_expm1_f32, float, fl_expm1_f32)
MAP(map_expm1_f64, double, fl_expm1_f64)
double naive_sum(const float* restrict a, long n, float m) { double s=0; for (long i=0;i<n;i++) s += (double)fl_exp_f32(a[i]-m); return s; }
double helper_sum32(const float* a, long n, float m) { return fl_sum_exp_shifted_f32(a, n, m, a); }
double helper_sum64(const double* a, long n, double m) { return fl_sum_exp_shifted_f64(a, n, m, a); }
float helper_max32(const float* a, long n) { return fl_max_f32(a, n); }
double helper_max64(const double* a, long n) { return fl_max_f64(a, n); }
