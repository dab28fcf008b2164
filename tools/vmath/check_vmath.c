/* check_vmath.c: accuracy + edge + throughput checker for vmath.h.
 * Build with the flag set under test (see build.sh); the fl_* functions are
 * called through array loops in separate noinline functions, so the VECTORISED
 * code is what gets checked. References: f32 -> libm double result at (double)x
 * (error measured in float ulps of that near-exact value); f64 -> long double
 * expl/logl/log1pl/expm1l (x87, 64-bit mantissa), error in double ulps. */
#define _GNU_SOURCE
#include "vmath.h"
#include <stdio.h>
#include <stdlib.h>
#include <float.h>
#include <time.h>
#include <omp.h>

#define NOINL __attribute__((noinline))
#define MAP(name, T, fn) NOINL void name(const T *restrict a, T *restrict b, long n) \
    { for (long i = 0; i < n; i++) b[i] = fn(a[i]); }
MAP(v_exp_f32, float, fl_exp_f32)     MAP(v_exp_f64, double, fl_exp_f64)
MAP(v_log_f32, float, fl_log_f32)     MAP(v_log_f64, double, fl_log_f64)
MAP(v_log1p_f32, float, fl_log1p_f32) MAP(v_log1p_f64, double, fl_log1p_f64)
MAP(v_expm1_f32, float, fl_expm1_f32) MAP(v_expm1_f64, double, fl_expm1_f64)
MAP(l_exp_f32, float, expf)           MAP(l_exp_f64, double, exp)
MAP(l_log_f32, float, logf)           MAP(l_log_f64, double, log)
MAP(l_log1p_f32, float, log1pf)       MAP(l_log1p_f64, double, log1p)
MAP(l_expm1_f32, float, expm1f)       MAP(l_expm1_f64, double, expm1)

typedef void (*map32)(const float *restrict, float *restrict, long);
typedef void (*map64)(const double *restrict, double *restrict, long);
typedef struct { const char *name; map32 v; map32 l; double (*ref)(double); } F32;
typedef struct { const char *name; map64 v; map64 l; long double (*ref)(long double); double (*dref)(double); } F64;
static const F32 f32s[] = {
    {"exp_f32", v_exp_f32, l_exp_f32, exp}, {"log_f32", v_log_f32, l_log_f32, log},
    {"log1p_f32", v_log1p_f32, l_log1p_f32, log1p}, {"expm1_f32", v_expm1_f32, l_expm1_f32, expm1}};
static const F64 f64s[] = {
    {"exp_f64", v_exp_f64, l_exp_f64, expl, exp}, {"log_f64", v_log_f64, l_log_f64, logl, log},
    {"log1p_f64", v_log1p_f64, l_log1p_f64, log1pl, log1p}, {"expm1_f64", v_expm1_f64, l_expm1_f64, expm1l, expm1}};

/* error of float got vs exact-ish ref in ulps of float at ref (subnormal ulp 2^-149) */
static double ulp32(float got, double ref)
{
    if (isnan(got) || isnan(ref)) return (isnan(got) && isnan(ref)) ? 0 : 1e9;
    if (fabs(ref) > FLT_MAX) {             /* ref overflows */
        if (isinf(ref)) return isinf(got) && (got > 0) == (ref > 0) ? 0 : 1e9;
        if ((float)ref == got) return 0;   /* both round to inf */
    }
    if (isinf(got)) return 1e9;
    int e; frexp(ref, &e);
    double u = ldexp(1.0, (e - 24 < -149) ? -149 : e - 24);
    return fabs((double)got - ref) / u;
}
static double ulp64(double got, long double ref)
{
    if (isnan(got) || isnan(ref)) return (isnan(got) && isnan(ref)) ? 0 : 1e9;
    if (fabsl(ref) > DBL_MAX) {
        if (isinf(ref)) return isinf(got) && (got > 0) == (ref > 0) ? 0 : 1e9;
        if ((double)ref == got) return 0;
    }
    if (isinf(got)) return 1e9;
    int e; frexpl(ref, &e);
    long double u = ldexpl(1.0L, (e - 53 < -1074) ? -1074 : e - 53);
    return (double)(fabsl((long double)got - ref) / u);
}
/* edge mismatch: different NaN-ness/inf-ness/sign of zero vs libm, or > 2 ulp */
static int edge_bad32(float got, float lib, double ref)
{
    if (isnan(lib) != isnan(got)) return 1;
    if (isnan(lib)) return 0;
    if (isinf(lib) || isinf(got) || lib == 0 || got == 0 || lib == 1.0f)
        return memcmp(&got, &lib, 4) != 0;
    return ulp32(got, ref) > 2.0;
}
static int edge_bad64(double got, double lib, long double ref)
{
    if (isnan(lib) != isnan(got)) return 1;
    if (isnan(lib)) return 0;
    if (isinf(lib) || isinf(got) || lib == 0 || got == 0 || lib == 1.0)
        return memcmp(&got, &lib, 8) != 0;
    return ulp64(got, ref) > 2.0;
}

static uint64_t rng_s = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { rng_s ^= rng_s << 13; rng_s ^= rng_s >> 7; rng_s ^= rng_s << 17; return rng_s; }
static double urand(double lo, double hi) { return lo + (hi - lo) * ((rnd() >> 11) * 0x1p-53); }

#define CH 4096
/* f32: all 2^32 bit patterns (step 1) or a stride; split into ranges by |x|. */
static void check_f32(const F32 *f, uint64_t step)
{
    double maxe[3] = {0, 0, 0}; float argx[3] = {0, 0, 0}; /* [0] all finite, [1] |x|<1, [2] result subnormal */
    long bad = 0;
    #pragma omp parallel
    {
        float in[CH], out[CH]; double me[3] = {0, 0, 0}; float ax[3] = {0, 0, 0}; long b = 0;
        #pragma omp for schedule(dynamic, 64)
        for (long blk = 0; blk < (long)((1ULL << 32) / (CH * step)); blk++) {
            for (int i = 0; i < CH; i++) { uint32_t u = (uint32_t)((blk * CH + i) * step); memcpy(&in[i], &u, 4); }
            f->v(in, out, CH);
            for (int i = 0; i < CH; i++) {
                double ref = f->ref((double)in[i]);
                double e = ulp32(out[i], ref);
                if (!isfinite(in[i])) { if (e > 0) b++; continue; }
                if (e > me[0]) { me[0] = e; ax[0] = in[i]; }
                if (fabsf(in[i]) < 1 && e > me[1]) { me[1] = e; ax[1] = in[i]; }
                if (fabs(ref) < FLT_MIN && e > me[2]) { me[2] = e; ax[2] = in[i]; }
            }
        }
        #pragma omp critical
        { for (int k = 0; k < 3; k++) if (me[k] > maxe[k]) { maxe[k] = me[k]; argx[k] = ax[k]; } bad += b; }
    }
    printf("%-10s %s: max ulp all=%.3f (x=%.9g)  |x|<1=%.3f  subnormal-result=%.3f  nonfinite-in mismatches=%ld\n",
           f->name, step == 1 ? "exhaustive 2^32" : "strided", maxe[0], argx[0], maxe[1], maxe[2], bad);
}

static void check_f64(const F64 *f, long n, double lo, double hi, int bits, const char *label)
{
    double maxe = 0, arg = 0;
    static double in[CH], out[CH];
    for (long done = 0; done < n; done += CH) {
        for (int i = 0; i < CH; i++) {
            if (bits) { uint64_t u = rnd() & 0x7fffffffffffffffULL; if (bits == 2) u |= rnd() & 0x8000000000000000ULL;
                        memcpy(&in[i], &u, 8); if (!isfinite(in[i])) in[i] = 1.5; }
            else in[i] = urand(lo, hi);
        }
        f->v(in, out, CH);
        for (int i = 0; i < CH; i++) {
            double e = ulp64(out[i], f->ref(in[i]));
            if (e > maxe) { maxe = e; arg = in[i]; }
        }
    }
    printf("%-10s %-28s max ulp=%.3f (x=%.17g)\n", f->name, label, maxe, arg);
}

static const float e32[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1.0f, -1.0f, 0x1p-149f, -0x1p-149f,
    0x1.fffffcp-127f, 0x1p-126f, -0x1p-126f, FLT_MAX, -FLT_MAX, 88.72283935546875f, 88.7228394f, 88.72284f, 89.0f,
    -87.33654f, -103.972077f, -103.97208f, -104.0f, -150.0f, 2.0f, 0.5f, 1e-8f, -1e-8f, 0x1p-25f, -0x1p-25f, 0x1p-24f,
    1e-30f, -1e-30f, -0.99999994f, -1.00000012f, 0.99999994f, 1.00000012f, 1e30f, -17.3f, -100.0f, 3e38f};
static const double e64[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, -NAN, 1.0, -1.0, 0x1p-1074, -0x1p-1074,
    0x0.fffffffffffffp-1022, 0x1p-1022, DBL_MAX, -DBL_MAX, 709.782712893384, 709.7827128933841, 709.79, 710.0,
    -708.3964185322641, -745.1332191019411, -745.1332191019412, -746.0, -800.0, 2.0, 0.5, 1e-17, -1e-17, 0x1p-53,
    -0x1p-53, 1e-300, -1e-300, -0.9999999999999999, -1.0000000000000002, 0.9999999999999999, 1.0000000000000002,
    1e300, -37.5, -40.0, 1e-10, -1e-10};

static int cmp_edges(void)
{
    int bad = 0;
    float vin[3 * 64], vout[3 * 64], lout[3 * 64]; int n = 0;
    for (size_t i = 0; i < sizeof e32 / sizeof *e32; i++) { float x = e32[i];
        vin[n++] = x; if (isfinite(x) && x != 0) { vin[n++] = nextafterf(x, INFINITY); vin[n++] = nextafterf(x, -INFINITY); } }
    for (int k = 0; k < 4; k++) {
        f32s[k].v(vin, vout, n); f32s[k].l(vin, lout, n); int b = 0;
        for (int i = 0; i < n; i++) if (edge_bad32(vout[i], lout[i], f32s[k].ref(vin[i]))) {
            b++; printf("  EDGE %s(%a): got %a libm %a\n", f32s[k].name, vin[i], vout[i], lout[i]); }
        printf("%-10s edge values: %d inputs, %d mismatches\n", f32s[k].name, n, b); bad += b;
    }
    double din[3 * 64], dout[3 * 64], dl[3 * 64]; n = 0;
    for (size_t i = 0; i < sizeof e64 / sizeof *e64; i++) { double x = e64[i];
        din[n++] = x; if (isfinite(x) && x != 0) { din[n++] = nextafter(x, INFINITY); din[n++] = nextafter(x, -INFINITY); } }
    for (int k = 0; k < 4; k++) {
        f64s[k].v(din, dout, n); f64s[k].l(din, dl, n); int b = 0;
        for (int i = 0; i < n; i++) if (edge_bad64(dout[i], dl[i], f64s[k].ref(din[i]))) {
            b++; printf("  EDGE %s(%a): got %a libm %a\n", f64s[k].name, din[i], dout[i], dl[i]); }
        printf("%-10s edge values: %d inputs, %d mismatches\n", f64s[k].name, n, b); bad += b;
    }
    return bad;
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#define NB (1 << 20)
NOINL double naive_sum_exp_f32(const float *x, long n, float m) { double s = 0; for (long i = 0; i < n; i++) s += (double)expf(x[i] - m); return s; }
NOINL double naive_sum_exp_f64(const double *x, long n, double m) { double s = 0; for (long i = 0; i < n; i++) s += exp(x[i] - m); return s; }
NOINL float naive_max_f32(const float *x, long n) { float m = -INFINITY; for (long i = 0; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m; return m; }
static double best_of(int reps, double (*fn)(void *), void *ctx) { double b = 1e9; for (int r = 0; r < reps; r++) { double t0 = now(); fn(ctx); double t = now() - t0; if (t < b) b = t; } return b * 1e9 / NB; }
typedef struct { map32 m32; map64 m64; float *a, *b; double *c, *d; } BC;
static double run32(void *p) { BC *c = p; c->m32(c->a, c->b, NB); return 0; }
static double run64(void *p) { BC *c = p; c->m64(c->c, c->d, NB); return 0; }
static volatile double sink;
static float *gx; static double *gd;
static double rs32v(void *p) { (void)p; sink = fl_sum_exp_shifted_f32(gx, NB, 3.0f, gx); return 0; }
static double rs32l(void *p) { (void)p; sink = naive_sum_exp_f32(gx, NB, 3.0f); return 0; }
static double rs64v(void *p) { (void)p; sink = fl_sum_exp_shifted_f64(gd, NB, 3.0, gd); return 0; }
static double rs64l(void *p) { (void)p; sink = naive_sum_exp_f64(gd, NB, 3.0); return 0; }
static double rm32v(void *p) { (void)p; sink = fl_max_f32(gx, NB); return 0; }
static double rm32l(void *p) { (void)p; sink = naive_max_f32(gx, NB); return 0; }
static double rm64v(void *p) { (void)p; sink = fl_max_f64(gd, NB); return 0; }

static void bench(void)
{
    static const double lo[4] = {-80, 1e-3, -0.9, -10}, hi[4] = {80, 1e3, 10, 10};
    BC c; c.a = malloc(NB * 4); c.b = malloc(NB * 4); c.c = malloc(NB * 8); c.d = malloc(NB * 8);
    printf("throughput, 1M elements, ns/element (best of 20): fl vs libm\n");
    for (int k = 0; k < 4; k++) {
        for (long i = 0; i < NB; i++) { c.c[i] = urand(lo[k], hi[k]); c.a[i] = (float)c.c[i]; }
        c.m32 = f32s[k].v; double tv = best_of(20, run32, &c); c.m32 = f32s[k].l; double tl = best_of(20, run32, &c);
        c.m64 = f64s[k].v; double dv = best_of(20, run64, &c); c.m64 = f64s[k].l; double dl = best_of(20, run64, &c);
        printf("  %-6s f32: %.3f vs %.3f (x%.1f)   f64: %.3f vs %.3f (x%.1f)\n", f32s[k].name, tv, tl, tl / tv, dv, dl, dl / dv);
    }
    gx = c.a; gd = c.c;
    for (long i = 0; i < NB; i++) { c.c[i] = urand(-20, 3); c.a[i] = (float)c.c[i]; }
    double a = best_of(20, rs32v, 0), b = best_of(20, rs32l, 0), d1 = best_of(20, rs64v, 0), d2 = best_of(20, rs64l, 0);
    printf("  sum_exp_shifted f32: %.3f vs naive expf loop %.3f   f64: %.3f vs naive exp loop %.3f\n", a, b, d1, d2);
    a = best_of(20, rm32v, 0); b = best_of(20, rm32l, 0); d1 = best_of(20, rm64v, 0);
    printf("  max f32: %.3f vs naive scalar loop %.3f   max f64: %.3f\n", a, b, d1);
    printf("  sum_exp f32 = %.17g (bits identical across builds if FMA use agrees)\n", fl_sum_exp_shifted_f32(c.a, NB, 3.0f, c.a));
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && argv[1][0] == 'q';
    int bad = cmp_edges();
    /* helpers: NaN propagation / n == 0 */
    float t[5] = {1, 5, NAN, 2, 3}; double td[5] = {1, 5, 2, NAN, 3};
    int hb = !isnan(fl_max_f32(t, 5)) || fl_max_f32(t, 2) != 5 || fl_max_f32(t, 0) != -INFINITY
           || !isnan(fl_max_f64(td, 5)) || fl_max_f64(td, 3) != 5 || fl_max_f64(td, 0) != -INFINITY;
    printf("max helpers nan/empty checks: %s\n", hb ? "FAIL" : "ok");
    for (int k = 0; k < 4; k++) check_f32(&f32s[k], (quick || k >= 2) ? 7 : 1);
    long n = quick ? 1 << 20 : 4 << 20;
    check_f64(&f64s[0], n, -746, 710, 0, "uniform [-746,710]");
    check_f64(&f64s[0], n, -1, 1, 0, "uniform [-1,1]");
    check_f64(&f64s[0], n, 0, 0, 2, "random bits (all finite)");
    check_f64(&f64s[1], n, 0, 0, 1, "random bits (positive)");
    check_f64(&f64s[1], n, 0.5, 2, 0, "uniform [0.5,2]");
    check_f64(&f64s[2], n, -1, 1, 0, "uniform [-1,1]");
    check_f64(&f64s[2], n, -1e-5, 1e-5, 0, "uniform [-1e-5,1e-5]");
    check_f64(&f64s[2], n, 0, 0, 1, "random bits (positive)");
    check_f64(&f64s[3], n, -40, 710, 0, "uniform [-40,710]");
    check_f64(&f64s[3], n, -1, 1, 0, "uniform [-1,1]");
    check_f64(&f64s[3], n, 0, 0, 2, "random bits (|x|<=710 kept)");
    printf("total edge mismatches: %d\n", bad);
    if (!quick || argc > 2) bench();
    return bad != 0;
}
