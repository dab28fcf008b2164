/*
 * vmath.h -- branch-free, auto-vectorisable exp/log/log1p/expm1 for fastloss.
 *
 * Every function is a scalar-looking static inline C11 function without
 * branches, libm calls or intrinsics, written so that gcc -O3 (no -ffast-math)
 * vectorises a plain loop  `for (i..) out[i] = fl_exp_f32(in[i]);`  with SSE2,
 * AVX2+FMA and AVX-512 (checked with -fopt-info-vec, see check_vmath.c /
 * build.sh / vec_test.c). Portable C: bit casts via memcpy; fabs/copysign are
 * inlined by gcc/clang as bit operations.
 *
 * METHOD
 *  exp:   k = rint(x/ln2) via the 1.5*2^23 / 1.5*2^52 magic-number trick (the
 *         integer k is read from the low mantissa bits: no cvt instruction),
 *         r = x - k*ln2 with a Cody-Waite two-constant split (Cephes split for
 *         f32, fdlibm split for f64), |r| <= ln2/2, exp(r) = 1 + r + r^2*P(r):
 *         f32 P degree 4 (poly degree 6), f64 P degree 9 (poly degree 11).
 *         Result = (p * 2^k1) * 2^k2 with k1 = floor(k/2) (f32) / rint(k/2)
 *         (f64), k2 = k - k1: no premature overflow next to the threshold and
 *         a single rounding into the subnormal range (gradual underflow).
 *  log:   x = 2^e * m, m in [sqrt(1/2), sqrt(2)) by integer ops on the bits
 *         (subnormals pre-scaled by 2^23 / 2^54), f = m - 1 exact.
 *         f32: log(1+f) = f - f^2/2 + f^3*Q(f), Q degree 8.
 *         f64: fdlibm e_log.c kernel, s = f/(2+f), R(s^2) with fdlibm's
 *         published Remez coefficients Lg1..Lg7 (one division).
 *         + e*ln2 with a hi/lo split.
 *  log1p: f32: computed in double (u = 1+x, log(u) with the f32 log polynomial
 *         evaluated in double; ~1e-9 relative before the final rounding).
 *         f64: fdlibm log1p idea: u = 1+x, c = (x-(u-1))/u, log(u) + c with the
 *         fdlibm log kernel (two divisions).
 *  expm1: f32: in double, 2^k*expm1(r) + (2^k-1), f32 exp polynomial.
 *         f64: same with a degree-12 polynomial fitted relative to expm1(r);
 *         for x > 40 (k >= 57) computed as exp(x) (the -1 is < 1/8 ulp).
 *  Coefficients (except fdlibm's Lg1..Lg7) are my own minimax fits: linear
 *  Remez exchange in mpmath at 50 digits on the relative error, over the
 *  reduction interval widened by 0.1-1% (fit.py). Max fit errors: exp f32
 *  3.3e-9, exp f64 3.7e-18, log f32 8.9e-10, expm1 f64 2.6e-19 (relative).
 *  Evaluation is Horner (throughput-bound loops hide the latency).
 *
 * EDGE CASES are produced by clamps + bitwise selects at the end, never by
 * branches. Two gcc-12 pitfalls (both verified, both block vectorisation on
 * SSE2/AVX2 with default -ftrapping-math, not on AVX-512 which masks):
 *  - `r = c ? expr : r` -- tree-sink moves FP ops feeding one arm into a
 *    conditional block and if-conversion will not speculate them. Hence the
 *    bitwise blends fl__sel_f32 / fl__blend_f64.
 *  - two clamps in a row (`x<lo?lo:x; x>hi?hi:x`) get jump-threaded into
 *    branches. Hence one symmetric clamp copysign(min(|x|, C), x).
 *  - f64 only: on SSE2 gcc cannot make a 64-bit lane mask from a double
 *    compare, so f64 conditions are computed on the bit pattern with uint64
 *    sub/shift (fl__m64_lt / fl__m64_eq).
 *  NaN inputs return NaN (exp: propagated arithmetically, payload not
 *  guaranteed; others return x itself). Floating-point exception flags are
 *  NOT meaningful (garbage lanes may raise invalid/overflow).
 *
 * DETERMINISM: fastloss builds with -std=c11, which turns implicit FMA
 * contraction off; the polynomials and reductions call FL__FMAF / FL__FMA
 * explicitly, one fused operation where the level has FMA (avx2, avx512) and a
 * multiply and an add where it does not (scalar), so the avx2 and avx512 levels
 * give the same bits and the scalar level agrees with them to rounding. The
 * whole-array loops at the end (vector extensions) sum in as many lanes as the
 * level's register holds, so levels agree to rounding, not bit for bit; each
 * level is deterministic (same input, same bits, any number of threads).
 * (The table below was measured by tools/vmath/build.sh: the FMA columns are
 * what the avx2/avx512 levels compute. tests/test_vmath.py checks the library's
 * own build at every level against the 2 ulp bound.)
 *
 * MEASURED MAX ERROR (ulp, check_vmath.c vs glibc 2.36: f32 against the double
 * libm value of (double)x, f64 against long double expl/logl/log1pl/expm1l;
 * f32 exp/log exhaustive over all 2^32 inputs, f32 log1p/expm1 every 7th bit
 * pattern, f64 several x 4M random inputs per range; edge lists: 0 mismatches)
 *
 *   function    SSE2 (-O3)    AVX2+FMA     AVX-512+FMA   notes
 *   exp_f32     0.977         1.009        1.009         exhaustive; subnormal results 0.75
 *   log_f32     0.841         0.812        0.812         exhaustive
 *   log1p_f32   0.539         0.539        0.539         every 7th pattern (6.1e8 inputs)
 *   expm1_f32   0.798         0.798        0.798         every 7th pattern
 *   exp_f64     0.992         1.021        1.021         [-746,710], [-1,1], random bits
 *   log_f64     0.832         0.749        0.749         random positive bits, [0.5,2]
 *   log1p_f64   0.852         0.745        0.745         [-1,1], [-1e-5,1e-5], random bits
 *   expm1_f64   1.443         1.418        1.418         worst near x~0.35-0.4 (k=1)
 *
 * (AVX2 and AVX-512 builds give identical results: same code, same FMA use.)
 */

#ifndef FASTLOSS_VMATH_H
#define FASTLOSS_VMATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>   /* INFINITY/NAN, fabs/copysign (always inlined by gcc/clang as
                       bit operations); no libm function is called */

#if defined(__GNUC__) || defined(__clang__)
#define FL_INLINE static inline __attribute__((always_inline))
#else
#define FL_INLINE static inline
#endif

/* a * b + c with one rounding where the level has FMA (a library call without it: not wanted), else two
 * roundings. Written out, because contraction is off (-std=c11; see setup.py); __builtin_fma is
 * vectorised like any other operation. */
#if defined(__FMA__) && (defined(__GNUC__) || defined(__clang__))
#define FL__FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define FL__FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
#define FL__FMAF(a, b, c) ((a) * (b) + (c))
#define FL__FMA(a, b, c) ((a) * (b) + (c))
#endif

/* ---- bit casts (memcpy: defined behaviour, compiles to a register move) ---- */
FL_INLINE uint32_t fl__f2u(float f)     { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
FL_INLINE float    fl__u2f(uint32_t u)  { float f; memcpy(&f, &u, sizeof f); return f; }
FL_INLINE uint64_t fl__d2u(double d)    { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
FL_INLINE double   fl__u2d(uint64_t u)  { double d; memcpy(&d, &u, sizeof d); return d; }

/* ---- half-precision storage, read as float ----
 * float16 (IEEE binary16) and bfloat16 data are read by the kernels as they are, 2 bytes an element, and
 * converted to float in registers (exactly: every half value is a float value). A storage kind names what a
 * `const void *` of float-computed data holds; functions taking one are always inlined with a constant kind,
 * so each kind gets its own loop and no branch is left in it. */
enum { FL_ST_F32 = 0, FL_ST_F16 = 1, FL_ST_BF16 = 2, FL_ST_F64 = 3 /* double: not a float kind */ };
#define FL_ST_SIZE(st) ((st) == FL_ST_F32 ? 4 : 2)

/* binary16 -> float: sign, then exponent and mantissa moved into place and rebiased by a multiplication by
 * 2^112 (exact, and it makes a half subnormal m 2^-24 a float normal); inf and nan (exponent all ones) keep
 * their payload with the float exponent all ones. */
FL_INLINE float fl_f16_to_f32(uint16_t h)
{
    const uint32_t em = h & 0x7fffu, sign = (uint32_t)(h & 0x8000u) << 16;
    const float finite = fl__u2f(em << 13) * 0x1p112f;
    const uint32_t bits = em >= 0x7c00u ? (em << 13) | 0x7f800000u : fl__f2u(finite);
    return fl__u2f(bits | sign);
}
/* bfloat16 is the high half of a float */
FL_INLINE float fl_bf16_to_f32(uint16_t h) { return fl__u2f((uint32_t)h << 16); }

/* element i of float-computed data of storage kind st, as float */
FL_INLINE float fl_load_st(const void *p, long i, const int st)
{
    if (st == FL_ST_F16) return fl_f16_to_f32(((const uint16_t *)p)[i]);
    if (st == FL_ST_BF16) return fl_bf16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* ---- half-precision storage, written from float: rounded to nearest, ties to even ----
 * The results torch's (and NumPy's / ml_dtypes') conversions give, bit for bit, for every non-nan float
 * (subnormals, overflow to inf, inf); a nan stays a quiet nan of its sign (payloads differ between libraries).
 * float -> binary16 as torch's c10::Half (fp16_ieee_from_fp32_value): |f| is scaled so that the float addition
 * of a power of two, bias, rounds it at binary16's last place (normal or subnormal) in the current rounding
 * mode (nearest even); the sum's exponent and mantissa bits are then the half's. No branch: the ternaries are
 * selects of two integers. */
FL_INLINE uint16_t fl_f32_to_f16(float f)
{
    const uint32_t w = fl__f2u(f), shl1 = w + w, sign = w & 0x80000000u;
    float base = (fabsf(f) * 0x1p112f) * 0x1p-110f; /* overflows to inf exactly where the half does */
    uint32_t bias = shl1 & 0xff000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias;  /* below half's normal range: round at 2^-24 */
    base = fl__u2f((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = fl__f2u(base);
    const uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
    return (uint16_t)((sign >> 16) | (shl1 > 0xff000000u ? 0x7e00u : nonsign));
}
/* float -> bfloat16: the high half of the float rounded by an integer addition (0x7fff plus the kept half's
 * lowest bit: ties to even; a carry into the exponent is the right rounding up, to inf past the largest) */
FL_INLINE uint16_t fl_f32_to_bf16(float f)
{
    const uint32_t u = fl__f2u(f);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}
/* element i of data of storage kind st (F32, F16, BF16) set to v, rounded */
FL_INLINE void fl_store_st(void *p, long i, float v, const int st)
{
    if (st == FL_ST_F16) ((uint16_t *)p)[i] = fl_f32_to_f16(v);
    else if (st == FL_ST_BF16) ((uint16_t *)p)[i] = fl_f32_to_bf16(v);
    else ((float *)p)[i] = v;
}

/* Branch-free select c ? a : b as a bitwise blend. Why not a ternary: without
 * -ffast-math (i.e. with the default -ftrapping-math) gcc's sinking pass moves
 * the FP arithmetic that feeds only one arm of a ternary into a conditional
 * block, and if-conversion then refuses to speculate it ("control flow in
 * loop"), so the loop is not vectorised on SSE2/AVX2 (AVX-512 masking hides
 * this). A bitwise blend has no arms to sink into. Even a pair of clamps
 * 'x < lo ? lo : x; x > hi ? hi : x' is jump-threaded into branches by gcc 12,
 * so clamps use the blend as well. */
FL_INLINE float fl__sel_f32(int c, float a, float b)
{
    uint32_t m = (uint32_t)0 - (uint32_t)c;
    return fl__u2f((fl__f2u(a) & m) | (fl__f2u(b) & ~m));
}

/* f64 selects need more care: on SSE2 (no pcmpgtq/64-bit vcond) gcc 12 cannot
 * turn a double comparison into a 64-bit lane mask, so every f64 condition is
 * computed on the IEEE bit pattern with uint64 sub/shift/and only (SSE2 has
 * psubq/psrlq), and blended bitwise. Masks are all-ones or zero. */
FL_INLINE uint64_t fl__m64_lt(uint64_t a, uint64_t b)   /* a < b, a,b < 2^63 */
{
    return (uint64_t)0 - ((a - b) >> 63);
}
FL_INLINE uint64_t fl__m64_eq(uint64_t a, uint64_t b)   /* a == b, any a,b */
{
    uint64_t d = a ^ b;
    return ((d | ((uint64_t)0 - d)) >> 63) - 1u;
}
FL_INLINE double fl__blend_f64(uint64_t m, double a, double b)  /* m ? a : b */
{
    return fl__u2d((fl__d2u(a) & m) | (fl__d2u(b) & ~m));
}
#define FL__ABS64  0x7fffffffffffffffULL
#define FL__INF64  0x7ff0000000000000ULL

/* Round-to-nearest magic numbers: (v + M) - M == rint(v) for |v| < 2^22 (f32) /
 * 2^51 (f64) in the default rounding mode, and the low mantissa bits of (v + M)
 * hold the integer in two's complement, so bits(v + M) - bits(M) == (int)rint(v)
 * without any float->int conversion instruction (cvtpd2qq needs AVX-512DQ). */
#define FL__MAGIC_F32 12582912.0f                 /* 1.5 * 2^23 */
#define FL__MAGIC_F64 6755399441055744.0          /* 1.5 * 2^52 */

/* ========================================================================= */
/* exp                                                                       */
/* ========================================================================= */

/* exp(r) - 1 - r ~= r^2 * P(r) on |r| <= ln2/2: Remez fits (fit.py). */
#define FL__EXPF_C2 4.999999305e-01f
#define FL__EXPF_C3 1.666651479e-01f
#define FL__EXPF_C4 4.166845681e-02f
#define FL__EXPF_C5 8.369418838e-03f
#define FL__EXPF_C6 1.381314334e-03f

FL_INLINE float fl_exp_f32(float x)
{
    /* Clamp |x| <= 104 so that |k| <= 150: below -104 the result is +0, above
     * 88.72 it overflows to +inf; both come out of the normal path. A single
     * symmetric clamp: two ternary clamps in a row get jump-threaded into
     * branches by gcc 12 and block vectorisation.  NaN passes through (comparisons
     * are false) and is fixed by the final select. */
    float ax = fabsf(x);                 /* fabsf/copysignf: inlined bit ops */
    ax = ax > 104.0f ? 104.0f : ax;      /* minps; NaN passes through */
    float xc = copysignf(ax, x);
    float t  = FL__FMAF(xc, 1.44269504088896341f, FL__MAGIC_F32);
    float kf = t - FL__MAGIC_F32;                    /* k = rint(x / ln2) */
    /* Cody-Waite: ln2 = C1 + C2, C1 has 9 significant bits so kf*C1 is exact
     * and x - kf*C1 is exact (Sterbenz). */
    float r = xc - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = FL__EXPF_C6;
    p = FL__FMAF(p, r, FL__EXPF_C5);
    p = FL__FMAF(p, r, FL__EXPF_C4);
    p = FL__FMAF(p, r, FL__EXPF_C3);
    p = FL__FMAF(p, r, FL__EXPF_C2);
    p = 1.0f + (r + (r * r) * p);
    /* Two-step scale 2^k = 2^k1 * 2^k2 (k1 = floor(k/2)): both factors are
     * normal for k in [-150, 129], so values near FLT_MAX do not overflow early
     * and subnormal results are rounded once (gradual underflow). */
    int32_t k  = (int32_t)(fl__f2u(t) - fl__f2u(FL__MAGIC_F32));
    int32_t k1 = k >> 1;
    int32_t k2 = k - k1;
    float s1 = fl__u2f((uint32_t)(k1 + 127) << 23);
    float s2 = fl__u2f((uint32_t)(k2 + 127) << 23);
    return (p * s1) * s2;                /* NaN propagates through p */
}

/* exp(r) - 1 - r ~= r^2 * P(r), degree 11 total, Remez max rel. err 3.7e-18. */
#define FL__EXP_C2  5.00000000000001110e-01
#define FL__EXP_C3  1.66666666666664104e-01
#define FL__EXP_C4  4.16666666665291910e-02
#define FL__EXP_C5  8.33333333349562527e-03
#define FL__EXP_C6  1.38888889439227445e-03
#define FL__EXP_C7  1.98412695047609308e-04
#define FL__EXP_C8  2.48014927626770117e-05
#define FL__EXP_C9  2.75575873466178299e-06
#define FL__EXP_C10 2.76303786650528637e-07
#define FL__EXP_C11 2.49999638118557685e-08
/* fdlibm split of ln2: LN2_HI has 32 significant bits -> k*LN2_HI exact. */
#define FL__LN2_HI 6.93147180369123816490e-01
#define FL__LN2_LO 1.90821492927058770002e-10

/* Shared f64 reduction: returns r, k (as double) and the two scale factors. */
FL_INLINE double fl__exp_reduce_f64(double xc, double *kd_out, double *s1, double *s2)
{
    double t  = FL__FMA(xc, 1.44269504088896340736, FL__MAGIC_F64);
    double kd = t - FL__MAGIC_F64;
    double r  = xc - kd * FL__LN2_HI;
    r = r - kd * FL__LN2_LO;
    /* k1 = rint(k/2) computed in floating point, k2 = k - k1: avoids 64-bit
     * arithmetic shifts (no vpsraq before AVX-512). Only uint64 add/shift. */
    double t1 = kd * 0.5 + FL__MAGIC_F64;
    uint64_t ki  = fl__d2u(t)  - fl__d2u(FL__MAGIC_F64);
    uint64_t k1i = fl__d2u(t1) - fl__d2u(FL__MAGIC_F64);
    uint64_t k2i = ki - k1i;
    *s1 = fl__u2d((k1i + 1023u) << 52);
    *s2 = fl__u2d((k2i + 1023u) << 52);
    *kd_out = kd;
    return r;
}

FL_INLINE double fl_exp_f64(double x)
{
    /* |x| <= 746: exp(-746) < 2^-1075 -> +0, exp(x > 709.78) -> +inf; |k| <= 1077
     * keeps both scale factors normal. NaN propagates through p. */
    double ax = fabs(x);
    ax = ax > 746.0 ? 746.0 : ax;
    double xc = copysign(ax, x);
    double kd, s1, s2;
    double r = fl__exp_reduce_f64(xc, &kd, &s1, &s2);
    double p = FL__EXP_C11;
    p = FL__FMA(p, r, FL__EXP_C10);
    p = FL__FMA(p, r, FL__EXP_C9);
    p = FL__FMA(p, r, FL__EXP_C8);
    p = FL__FMA(p, r, FL__EXP_C7);
    p = FL__FMA(p, r, FL__EXP_C6);
    p = FL__FMA(p, r, FL__EXP_C5);
    p = FL__FMA(p, r, FL__EXP_C4);
    p = FL__FMA(p, r, FL__EXP_C3);
    p = FL__FMA(p, r, FL__EXP_C2);
    p = 1.0 + (r + (r * r) * p);
    return (p * s1) * s2;
}

/* ========================================================================= */
/* log                                                                       */
/* ========================================================================= */

/* log(1+f) - f + f^2/2 ~= f^3 * Q(f) on f in [sqrt(1/2)-1, sqrt(2)-1],
 * Q degree 8, Remez max rel. err 8.9e-10 (fit.py). Also used (in double) by
 * fl_log1p_f32. */
#define FL__LOGF_C3   3.333330628e-01f
#define FL__LOGF_C4  -2.499997337e-01f
#define FL__LOGF_C5   2.000252862e-01f
#define FL__LOGF_C6  -1.667037251e-01f
#define FL__LOGF_C7   1.421309032e-01f
#define FL__LOGF_C8  -1.235836266e-01f
#define FL__LOGF_C9   1.188855007e-01f
#define FL__LOGF_C10 -1.196650558e-01f
#define FL__LOGF_C11  7.105292265e-02f

FL_INLINE float fl_log_f32(float x)
{
    /* Subnormals (and 0, negatives: fixed by the selects) are scaled by 2^23. */
    int sub = x < 0x1p-126f;
    float xs   = fl__sel_f32(sub, x * 0x1p23f, x);
    float eadj = fl__sel_f32(sub, -23.0f, 0.0f);
    /* x = 2^e * m, m in [sqrt(1/2), sqrt(2)): subtract bits(sqrt(1/2)) so the
     * exponent field of ix is e, re-add it to the mantissa bits to get m. */
    uint32_t ix = fl__f2u(xs) - 0x3f3504f3u;
    float e = (float)((int32_t)ix >> 23) + eadj;
    float m = fl__u2f((ix & 0x007fffffu) + 0x3f3504f3u);
    float f = m - 1.0f;                           /* exact (Sterbenz) */
    float q = FL__LOGF_C11;
    q = FL__FMAF(q, f, FL__LOGF_C10);
    q = FL__FMAF(q, f, FL__LOGF_C9);
    q = FL__FMAF(q, f, FL__LOGF_C8);
    q = FL__FMAF(q, f, FL__LOGF_C7);
    q = FL__FMAF(q, f, FL__LOGF_C6);
    q = FL__FMAF(q, f, FL__LOGF_C5);
    q = FL__FMAF(q, f, FL__LOGF_C4);
    q = FL__FMAF(q, f, FL__LOGF_C3);
    float f2 = f * f;
    float y = (f2 * f) * q - 0.5f * f2;
    /* ln2 = 0.693359375 + (-2.12194440e-4): e*hi exact, small terms first. */
    float r = (f + (y + e * -2.12194440e-4f)) + e * 0.693359375f;
    r = fl__sel_f32(x < 0.0f, NAN, r);
    r = fl__sel_f32(x == 0.0f, -INFINITY, r);
    r = fl__sel_f32(x == INFINITY, INFINITY, r);
    return fl__sel_f32(x != x, x, r);
}

/* fdlibm e_log.c coefficients (Remez, |err| < 2^-58.45 for the s-series). */
#define FL__LG1 6.666666666666735130e-01
#define FL__LG2 3.999999999940941908e-01
#define FL__LG3 2.857142874366239149e-01
#define FL__LG4 2.222219843214978396e-01
#define FL__LG5 1.818357216161805012e-01
#define FL__LG6 1.531383769920937332e-01
#define FL__LG7 1.479819860511658591e-01

/* Split positive normal double u = 2^e * m, m in [sqrt(1/2), sqrt(2)), using only
 * uint64 add/and/logical shift (vectorisable on SSE2). Returns f = m - 1. */
FL_INLINE double fl__log_split_f64(double u, double *e)
{
    uint64_t ix = fl__d2u(u) - 0x3fe6a09e667f3bcdULL;
    uint64_t eb = (ix + 0x3ff0000000000000ULL) >> 52;              /* e + 1023 */
    *e = fl__u2d(0x4330000000000000ULL | eb) - (0x1p52 + 1023.0);   /* exact */
    return fl__u2d((ix & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL) - 1.0;
}

/* fdlibm log kernel: log(1+f) + e*ln2 with extra low-order term c. */
FL_INLINE double fl__log_kernel_f64(double f, double e, double c)
{
    double hfsq = 0.5 * f * f;
    double s = f / (2.0 + f);
    double z = s * s, w = z * z;
    double t1 = w * (FL__LG2 + w * (FL__LG4 + w * FL__LG6));
    double t2 = z * (FL__LG1 + w * (FL__LG3 + w * (FL__LG5 + w * FL__LG7)));
    double R = t2 + t1;
    return e * FL__LN2_HI - ((hfsq - (s * (hfsq + R) + (e * FL__LN2_LO + c))) - f);
}

FL_INLINE double fl_log_f64(double x)
{
    uint64_t bx = fl__d2u(x), ax = bx & FL__ABS64;
    uint64_t sub = fl__m64_lt(ax, 0x0010000000000000ULL);   /* |x| < DBL_MIN */
    double xs   = fl__blend_f64(sub, x * 0x1p54, x);
    double eadj = fl__blend_f64(sub, -54.0, 0.0);
    double e;
    double f = fl__log_split_f64(xs, &e);
    double r = fl__log_kernel_f64(f, e + eadj, 0.0);
    uint64_t zero = fl__m64_eq(ax, 0);
    uint64_t neg  = ((uint64_t)0 - (bx >> 63)) & ~zero;
    r = fl__blend_f64(neg, NAN, r);
    r = fl__blend_f64(zero, -INFINITY, r);
    r = fl__blend_f64(fl__m64_eq(bx, FL__INF64), INFINITY, r);
    return fl__blend_f64(fl__m64_lt(FL__INF64, ax), x, r);        /* NaN */
}

/* ========================================================================= */
/* log1p                                                                     */
/* ========================================================================= */

/* f32: evaluated entirely in double: u = 1 + x has relative error <= 2^-53
 * (exact for 2^-29 <= |x| <= 2^29), so log(u) is log1p(x) to ~1e-16 relative
 * except for tiny x, where x itself is returned. The f32 log polynomial gives
 * 8.9e-10 relative error, so the final (float) rounding dominates. */
FL_INLINE float fl_log1p_f32(float x)
{
    /* For x <= -1, +inf, NaN the split below yields garbage (no UB: integer ops
     * are unsigned) that the final selects replace. */
    double u = 1.0 + (double)x;
    double e;
    double f = fl__log_split_f64(u, &e);
    double q = (double)FL__LOGF_C11;
    q = FL__FMA(q, f, (double)FL__LOGF_C10);
    q = FL__FMA(q, f, (double)FL__LOGF_C9);
    q = FL__FMA(q, f, (double)FL__LOGF_C8);
    q = FL__FMA(q, f, (double)FL__LOGF_C7);
    q = FL__FMA(q, f, (double)FL__LOGF_C6);
    q = FL__FMA(q, f, (double)FL__LOGF_C5);
    q = FL__FMA(q, f, (double)FL__LOGF_C4);
    q = FL__FMA(q, f, (double)FL__LOGF_C3);
    double f2 = f * f;
    double yd = e * 0.69314718055994530942 + (f + ((f2 * f) * q - 0.5 * f2));
    float r = (float)yd;
    r = fl__sel_f32(x < -1.0f, NAN, r);
    r = fl__sel_f32(x == -1.0f, -INFINITY, r);
    r = fl__sel_f32(x == INFINITY, INFINITY, r);
    r = fl__sel_f32((x < 0x1p-25f) & (x > -0x1p-25f), x, r);  /* log1p(x) rounds to x; keeps -0 */
    return fl__sel_f32(x != x, x, r);
}

/* f64: fdlibm-style. u = 1 + x rounded; c = (x - (u-1)) / u is the first-order
 * correction log(1+x) - log(u) (x - (u-1) is exact for u < 2^53). */
FL_INLINE double fl_log1p_f64(double x)
{
    double u = 1.0 + x;          /* x <= -1, inf, NaN: garbage, fixed by selects */
    double c = (x - (u - 1.0)) / u;
    double e;
    double f = fl__log_split_f64(u, &e);
    double r = fl__log_kernel_f64(f, e, c);
    uint64_t bx = fl__d2u(x), ax = bx & FL__ABS64;
    uint64_t neg = (uint64_t)0 - (bx >> 63);
    r = fl__blend_f64(neg & fl__m64_lt(0x3ff0000000000000ULL, ax), NAN, r);  /* x < -1 */
    r = fl__blend_f64(fl__m64_eq(bx, 0xbff0000000000000ULL), -INFINITY, r);  /* x == -1 */
    r = fl__blend_f64(fl__m64_eq(bx, FL__INF64), INFINITY, r);
    r = fl__blend_f64(fl__m64_eq(ax, 0), x, r);                               /* keeps -0 */
    return fl__blend_f64(fl__m64_lt(FL__INF64, ax), x, r);                    /* NaN */
}

/* ========================================================================= */
/* expm1                                                                     */
/* ========================================================================= */

/* f32: in double. expm1(x) = 2^k * expm1(r) + (2^k - 1), s*q exact, s-1 exact
 * for k <= 53, one rounding in double, then one to float. */
FL_INLINE float fl_expm1_f32(float x)
{
    float ax = fabsf(x);
    ax = ax > 89.0f ? 89.0f : ax;        /* expm1f(-89) = -1, expm1(89) > FLT_MAX */
    double xc = (double)copysignf(ax, x);
    double t  = FL__FMA(xc, 1.44269504088896340736, FL__MAGIC_F64);
    double kd = t - FL__MAGIC_F64;
    double r  = xc - kd * FL__LN2_HI;
    r = r - kd * FL__LN2_LO;
    double p = (double)FL__EXPF_C6;
    p = FL__FMA(p, r, (double)FL__EXPF_C5);
    p = FL__FMA(p, r, (double)FL__EXPF_C4);
    p = FL__FMA(p, r, (double)FL__EXPF_C3);
    p = FL__FMA(p, r, (double)FL__EXPF_C2);
    double q = r + (r * r) * p;                   /* expm1(r) */
    double s = fl__u2d((fl__d2u(t) - fl__d2u(FL__MAGIC_F64) + 1023u) << 52);
    float y = (float)(s * q + (s - 1.0));
    y = fl__sel_f32((x < 0x1p-25f) & (x > -0x1p-25f), x, y);  /* expm1(x) rounds to x; keeps -0 */
    return fl__sel_f32(x != x, x, y);
}

/* expm1(r) - r ~= r^2 * P(r), degree 12, Remez on error relative to expm1(r):
 * max 2.6e-19 (fit.py). */
#define FL__EM1_C2  5.00000000000000000e-01
#define FL__EM1_C3  1.66666666666666768e-01
#define FL__EM1_C4  4.16666666666665048e-02
#define FL__EM1_C5  8.33333333332160822e-03
#define FL__EM1_C6  1.38888888889629014e-03
#define FL__EM1_C7  1.98412698862079044e-04
#define FL__EM1_C8  2.48015871718374971e-05
#define FL__EM1_C9  2.75572441042224547e-06
#define FL__EM1_C10 2.75574029466714918e-07
#define FL__EM1_C11 2.51090813906144179e-08
#define FL__EM1_C12 2.08753262741477072e-09

FL_INLINE double fl_expm1_f64(double x)
{
    double ax = fabs(x);
    ax = ax > 746.0 ? 746.0 : ax;        /* expm1(-746) = -1, expm1(746) = +inf */
    double xc = copysign(ax, x);
    double kd, s1, s2;
    double r = fl__exp_reduce_f64(xc, &kd, &s1, &s2);
    double p = FL__EM1_C12;
    p = FL__FMA(p, r, FL__EM1_C11);
    p = FL__FMA(p, r, FL__EM1_C10);
    p = FL__FMA(p, r, FL__EM1_C9);
    p = FL__FMA(p, r, FL__EM1_C8);
    p = FL__FMA(p, r, FL__EM1_C7);
    p = FL__FMA(p, r, FL__EM1_C6);
    p = FL__FMA(p, r, FL__EM1_C5);
    p = FL__FMA(p, r, FL__EM1_C4);
    p = FL__FMA(p, r, FL__EM1_C3);
    p = FL__FMA(p, r, FL__EM1_C2);
    double rrp = (r * r) * p;
    double q = r + rrp;                           /* expm1(r) */
    double s = s1 * s2;                           /* exact, finite for k <= 1023 */
    /* k <= 0: s*q + (s-1), no cancellation (|s*q| < |s-1|/2).
     * k >= 1: ((s-1) + s*r) + s*r^2*P: the first sum is exact for k = 1 and
     * rounding q = r + r^2*P first would cost up to 1 extra ulp through the
     * cancellation 2q + 1 (x ~ 0.35..0.5). */
    double yneg = s * q + (s - 1.0);
    double ypos = ((s - 1.0) + s * r) + s * rrp;
    double ysmall = fl__blend_f64((uint64_t)0 - (fl__d2u(kd) >> 63), yneg, ypos);
    double ybig = ((1.0 + q) * s1) * s2;          /* k >= 57: the -1 is < 1/8 ulp */
    uint64_t bx = fl__d2u(x), bax = bx & FL__ABS64;
    uint64_t pos = ((bx >> 63) - 1u);             /* all-ones if sign clear */
    double y = fl__blend_f64(pos & fl__m64_lt(0x4044000000000000ULL, bx), ybig, ysmall); /* x > 40 */
    y = fl__blend_f64(fl__m64_eq(bax, 0), x, y);                 /* keeps -0 */
    return fl__blend_f64(fl__m64_lt(FL__INF64, bax), x, y);      /* NaN */
}

/* ========================================================================= */
/* Whole-array loops of the softmax family: max, sum of exps, scaled exps     */
/* ========================================================================= */
/*
 * gcc vectorises neither a float max reduction nor a double sum reduction
 * without -ffast-math, so these loops are written with GCC/clang vector
 * extensions, one register wide at each SIMD level (64 bytes with AVX-512,
 * 32 with AVX2, 16 otherwise: generic vectors wider than the hardware are
 * lowered badly). Compilers without vector extensions get plain loops.
 * Tails are padded with -inf: its exp is 0 and it never wins a max.
 * The association of the sums is fixed for a given level; it differs between
 * levels (lane counts), like the FMA contraction of the polynomials, so levels
 * agree to rounding, and every level is deterministic (same input, same bits).
 */
#if defined(__GNUC__) || defined(__clang__)
#if defined(__AVX512F__)
#define FL_VBYTES 64
#elif defined(__AVX2__)
#define FL_VBYTES 32
#else
#define FL_VBYTES 16
#endif
typedef float fl_vf __attribute__((vector_size(FL_VBYTES)));
typedef int32_t fl_vfi __attribute__((vector_size(FL_VBYTES)));
typedef float fl_vfh __attribute__((vector_size(FL_VBYTES / 2)));   /* half a float vector */
typedef double fl_vd __attribute__((vector_size(FL_VBYTES)));
typedef int64_t fl_vdi __attribute__((vector_size(FL_VBYTES)));
#define FL_VF_N (FL_VBYTES / 4)
#define FL_VD_N (FL_VBYTES / 8)

FL_INLINE fl_vf fl__vf_load(const float *p) { fl_vf v; memcpy(&v, p, sizeof v); return v; }
FL_INLINE fl_vd fl__vd_load(const double *p) { fl_vd v; memcpy(&v, p, sizeof v); return v; }
FL_INLINE void fl__vf_store(float *p, fl_vf v) { memcpy(p, &v, sizeof v); }
FL_INLINE void fl__vd_store(double *p, fl_vd v) { memcpy(p, &v, sizeof v); }
/* the first n (< lane count) elements of p; the other lanes -inf */
FL_INLINE fl_vf fl__vf_load_tail(const float *p, long n)
{
    float b[FL_VF_N];
    for (int j = 0; j < FL_VF_N; j++) b[j] = -INFINITY;
    memcpy(b, p, (size_t)n * sizeof(float));
    return fl__vf_load(b);
}
FL_INLINE fl_vd fl__vd_load_tail(const double *p, long n)
{
    double b[FL_VD_N];
    for (int j = 0; j < FL_VD_N; j++) b[j] = -INFINITY;
    memcpy(b, p, (size_t)n * sizeof(double));
    return fl__vd_load(b);
}
FL_INLINE void fl__vf_store_tail(float *p, fl_vf v, long n)
{
    float b[FL_VF_N];
    fl__vf_store(b, v);
    memcpy(p, b, (size_t)n * sizeof(float));
}
FL_INLINE void fl__vd_store_tail(double *p, fl_vd v, long n)
{
    double b[FL_VD_N];
    fl__vd_store(b, v);
    memcpy(p, b, (size_t)n * sizeof(double));
}

/* the low and high halves of a float vector, widened to double vectors, and back (fl__vf_narrow: each rounded to
 * nearest, as a (float) cast); and a*b+c fused where the level has FMA. Intrinsics here, because gcc lowers these
 * badly from generic vector code (the halves went through the stack: sample-weighted mse 30% slower), and
 * contraction of a*b+c is off (see setup.py); an intrinsic is one instruction wherever it is inlined. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define FL__VFMA(a, b, c) ((fl_vf)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
/* max(lo, x) that keeps a nan x (maxps returns its second operand when either is nan) */
#define FL__VMAX_KEEP_NAN(lo, x) ((fl_vf)_mm512_max_ps((__m512)(lo), (__m512)(x)))
#define FL__VMIN_KEEP_NAN(hi, x) ((fl_vf)_mm512_min_ps((__m512)(hi), (__m512)(x)))
/* max(m, v) that ignores a nan v (maxps returns its second operand, m, then) */
#define FL__VMAX_IGNORE_NAN(m, v) ((fl_vf)_mm512_max_ps((__m512)(v), (__m512)(m)))
/* p * 2^k for integral k (as float), rounded once: overflow to inf, gradual underflow (vscalefps) */
#define FL__VSCALE(p, kf) ((fl_vf)_mm512_scalef_ps((__m512)(p), (__m512)(kf)))
/* 1 / u to 2^-14 (a division of 16 floats takes ~16 cycles; this, one) */
#define FL__VRCP_APPROX(u) ((fl_vf)_mm512_rcp14_ps((__m512)(u)))
#define FL__VDFMA(a, b, c) ((fl_vd)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
FL_INLINE void fl__vf_widen(fl_vf v, fl_vd *lo, fl_vd *hi)
{
    *lo = (fl_vd)_mm512_cvtps_pd(_mm512_castps512_ps256((__m512)v));
    *hi = (fl_vd)_mm512_cvtps_pd((__m256)_mm512_extractf64x4_pd((__m512d)v, 1));
}
FL_INLINE fl_vf fl__vf_narrow(fl_vd lo, fl_vd hi)
{
    const __m256 l = _mm512_cvtpd_ps((__m512d)lo), h = _mm512_cvtpd_ps((__m512d)hi);
    return (fl_vf)_mm512_insertf64x4(_mm512_castpd256_pd512((__m256d)l), (__m256d)h, 1);
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define FL__VFMA(a, b, c) ((fl_vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define FL__VMAX_KEEP_NAN(lo, x) ((fl_vf)_mm256_max_ps((__m256)(lo), (__m256)(x)))
#define FL__VMIN_KEEP_NAN(hi, x) ((fl_vf)_mm256_min_ps((__m256)(hi), (__m256)(x)))
#define FL__VMAX_IGNORE_NAN(m, v) ((fl_vf)_mm256_max_ps((__m256)(v), (__m256)(m)))
#define FL__VRCP_APPROX(u) ((fl_vf)_mm256_rcp_ps((__m256)(u)))   /* to 1.5 * 2^-12 */
#define FL__VDFMA(a, b, c) ((fl_vd)_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c)))
FL_INLINE void fl__vf_widen(fl_vf v, fl_vd *lo, fl_vd *hi)
{
    *lo = (fl_vd)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)v));
    *hi = (fl_vd)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)v, 1));
}
FL_INLINE fl_vf fl__vf_narrow(fl_vd lo, fl_vd hi)
{
    return (fl_vf)_mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps((__m256d)lo)),
                                       _mm256_cvtpd_ps((__m256d)hi), 1);
}
#else
#define FL__VFMA(a, b, c) ((a) * (b) + (c))
#define FL__VDFMA(a, b, c) ((a) * (b) + (c))
#define FL__VMAX_KEEP_NAN(lo, x) fl__vf_blend((x) < (lo), (lo), (x))
#define FL__VMIN_KEEP_NAN(hi, x) fl__vf_blend((x) > (hi), (hi), (x))
#define FL__VMAX_IGNORE_NAN(m, v) fl__vf_blend((v) > (m), (v), (m))
#if defined(__clang__) || __GNUC__ >= 12
#if FL_VBYTES == 64
#define FL__LO_LANES 0, 1, 2, 3, 4, 5, 6, 7
#define FL__HI_LANES 8, 9, 10, 11, 12, 13, 14, 15
#elif FL_VBYTES == 32
#define FL__LO_LANES 0, 1, 2, 3
#define FL__HI_LANES 4, 5, 6, 7
#else
#define FL__LO_LANES 0, 1
#define FL__HI_LANES 2, 3
#endif
#define FL__VF_LO(v) __builtin_shufflevector(v, v, FL__LO_LANES)
#define FL__VF_HI(v) __builtin_shufflevector(v, v, FL__HI_LANES)
#define FL__VF_JOIN(l, h) __builtin_shufflevector(l, h, FL__LO_LANES, FL__HI_LANES)
#else
FL_INLINE fl_vfh fl__vf_half(fl_vf v, int hi) { fl_vfh h; memcpy(&h, (const char *)&v + hi * sizeof h, sizeof h); return h; }
FL_INLINE fl_vf fl__vf_join(fl_vfh l, fl_vfh h) { fl_vf v; memcpy(&v, &l, sizeof l); memcpy((char *)&v + sizeof l, &h, sizeof h); return v; }
#define FL__VF_LO(v) fl__vf_half(v, 0)
#define FL__VF_HI(v) fl__vf_half(v, 1)
#define FL__VF_JOIN(l, h) fl__vf_join(l, h)
#endif
FL_INLINE void fl__vf_widen(fl_vf v, fl_vd *lo, fl_vd *hi)
{
    *lo = __builtin_convertvector(FL__VF_LO(v), fl_vd);
    *hi = __builtin_convertvector(FL__VF_HI(v), fl_vd);
}
FL_INLINE fl_vf fl__vf_narrow(fl_vd lo, fl_vd hi)
{
    return FL__VF_JOIN(__builtin_convertvector(lo, fl_vfh), __builtin_convertvector(hi, fl_vfh));
}
#endif
/* c - a * b, fused where the level has FMA (generic code of FL__VFMA(0 - a, b, c) costs a negation more) */
#if defined(__AVX512F__)
#define FL__VFNMA(a, b, c) ((fl_vf)_mm512_fnmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#elif defined(__AVX2__) && defined(__FMA__)
#define FL__VFNMA(a, b, c) ((fl_vf)_mm256_fnmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#else
#define FL__VFNMA(a, b, c) ((c) - (a) * (b))
#endif
/* the halves of v added, widened, to lo and hi */
FL_INLINE void fl__vf_add_widened(fl_vd *lo, fl_vd *hi, fl_vf v)
{
    fl_vd l, h;
    fl__vf_widen(v, &l, &h);
    *lo += l;
    *hi += h;
}

/* mask ? a : b, lane-wise (mask lanes all ones or all zeros) */
FL_INLINE fl_vf fl__vf_blend(fl_vfi m, fl_vf a, fl_vf b) { return (fl_vf)((m & (fl_vfi)a) | (~m & (fl_vfi)b)); }
FL_INLINE fl_vd fl__vd_blend(fl_vdi m, fl_vd a, fl_vd b) { return (fl_vd)((m & (fl_vdi)a) | (~m & (fl_vdi)b)); }

/* FL_VF_N halves at p as a float vector: binary16 with the level's conversion instruction (AVX-512F, F16C),
 * elsewhere as fl_f16_to_f32 in integer lanes; bfloat16 by a 16-bit shift. */
typedef uint16_t fl_vh __attribute__((vector_size(FL_VBYTES / 2)));
typedef uint32_t fl_vfu __attribute__((vector_size(FL_VBYTES)));
FL_INLINE fl_vf fl__vf_load_f16(const uint16_t *p)
{
#if defined(__AVX512F__) && FL_VF_N == 16
    return (fl_vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
#elif defined(__F16C__) && FL_VF_N == 8
    return (fl_vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
#else
    fl_vh h;
    memcpy(&h, p, sizeof h);
    const fl_vfu u = __builtin_convertvector(h, fl_vfu);
    const fl_vfu em = u & 0x7fffu, sign = (u & 0x8000u) << 16;
    const fl_vf finite = (fl_vf)(em << 13) * 0x1p112f;
    const fl_vfu bits = (fl_vfu)fl__vf_blend((fl_vfi)(em >= 0x7c00u), (fl_vf)((em << 13) | 0x7f800000u), finite);
    return (fl_vf)(bits | sign);
#endif
}
FL_INLINE fl_vf fl__vf_load_bf16(const uint16_t *p)
{
    /* a widening load and a shift; gcc makes two 128-bit widenings and an insert of the generic form */
#if defined(__AVX512F__) && FL_VF_N == 16
    return (fl_vf)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)), 16);
#elif defined(__AVX2__) && FL_VF_N == 8
    return (fl_vf)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)), 16);
#else
    fl_vh h;
    memcpy(&h, p, sizeof h);
    return (fl_vf)(__builtin_convertvector(h, fl_vfu) << 16);
#endif
}
/* the float vector of elements i .. i + FL_VF_N of data of storage kind st */
FL_INLINE fl_vf fl__vf_load_st(const void *p, long i, const int st)
{
    if (st == FL_ST_F16) return fl__vf_load_f16((const uint16_t *)p + i);
    if (st == FL_ST_BF16) return fl__vf_load_bf16((const uint16_t *)p + i);
    return fl__vf_load((const float *)p + i);
}
/* the first n (< lane count) elements from i; the other lanes -inf */
FL_INLINE fl_vf fl__vf_load_tail_st(const void *p, long i, long n, const int st)
{
    if (st == FL_ST_F32) return fl__vf_load_tail((const float *)p + i, n);
    float b[FL_VF_N];
    for (int j = 0; j < FL_VF_N; j++) b[j] = j < n ? fl_load_st(p, i + j, st) : -INFINITY;
    return fl__vf_load(b);
}

/* A float vector stored as FL_VF_N halves at p, rounded to nearest even: the same bits as fl_f32_to_f16 /
 * fl_f32_to_bf16 for every non-nan lane. binary16 with the level's conversion instruction (AVX-512F, F16C;
 * a nan keeps its sign and quiet bit), elsewhere fl_f32_to_f16's arithmetic in vector lanes; bfloat16 by the
 * integer rounding of fl_f32_to_bf16 and a narrowing to 16 bits (values < 2^16: no saturation). */
FL_INLINE void fl__vf_store_f16(uint16_t *p, fl_vf v)
{
#if defined(__AVX512F__) && FL_VF_N == 16
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__) && FL_VF_N == 8
    _mm_storeu_si128((__m128i *)(void *)p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT));
#else
    const fl_vfu w = (fl_vfu)v, shl1 = w + w, sign = w & 0x80000000u;
    const fl_vf base = ((fl_vf)(w & 0x7fffffffu) * 0x1p112f) * 0x1p-110f;
    const fl_vfu bias0 = shl1 & 0xff000000u;
    const fl_vfu bias = (fl_vfu)fl__vf_blend((fl_vfi)(bias0 < 0x71000000u), (fl_vf)(bias0 * 0 + 0x71000000u),
                                             (fl_vf)bias0);
    const fl_vfu bits = (fl_vfu)((fl_vf)((bias >> 1) + 0x07800000u) + base);
    const fl_vfu nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
    const fl_vfu h = (sign >> 16) | (fl_vfu)fl__vf_blend((fl_vfi)(shl1 > 0xff000000u), (fl_vf)(w * 0 + 0x7e00u),
                                                         (fl_vf)nonsign);
    const fl_vh out = __builtin_convertvector(h, fl_vh);
    memcpy(p, &out, sizeof out);
#endif
}
FL_INLINE void fl__vf_store_bf16(uint16_t *p, fl_vf v)
{
    const fl_vfu u = (fl_vfu)v;
    const fl_vfu rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const fl_vfu h = (fl_vfu)fl__vf_blend((fl_vfi)((u & 0x7fffffffu) > 0x7f800000u), (fl_vf)((u >> 16) | 0x40u),
                                          (fl_vf)rounded);
#if defined(__AVX512F__) && FL_VF_N == 16
    _mm256_storeu_si256((__m256i *)(void *)p, _mm512_cvtepi32_epi16((__m512i)h));
#elif defined(__AVX2__) && FL_VF_N == 8
    /* gcc makes a long shuffle sequence of the generic narrowing; one pack of the two 128-bit halves */
    _mm_storeu_si128((__m128i *)(void *)p, _mm_packus_epi32(_mm256_castsi256_si128((__m256i)h),
                                                            _mm256_extracti128_si256((__m256i)h, 1)));
#else
    const fl_vh out = __builtin_convertvector(h, fl_vh);
    memcpy(p, &out, sizeof out);
#endif
}
/* elements i .. i + FL_VF_N of data of storage kind st (F32, F16, BF16) set to v, rounded */
FL_INLINE void fl__vf_store_st(void *p, long i, fl_vf v, const int st)
{
    if (st == FL_ST_F16) fl__vf_store_f16((uint16_t *)p + i, v);
    else if (st == FL_ST_BF16) fl__vf_store_bf16((uint16_t *)p + i, v);
    else fl__vf_store((float *)p + i, v);
}
/* the first n (< lane count) of them */
FL_INLINE void fl__vf_store_tail_st(void *p, long i, fl_vf v, long n, const int st)
{
    float b[FL_VF_N];
    fl__vf_store(b, v);
    for (long j = 0; j < n; j++) fl_store_st(p, i + j, b[j], st);
}

/* Lockstep: the vector exps below take an array of n vectors and do each step for all of them before the next
 * step. An exp is a chain of ~14 dependent operations (~56 cycles); written one vector after another, the
 * out-of-order scheduler holds too few independent chains to issue two a cycle (measured, sum of exps in L1:
 * 14 cycles a vector one at a time, 8 with 8 in lockstep, the 2-port bound). Same operations per vector, same
 * bits. FL__XU vectors at a time in the hot loops: 8 with 32 vector registers (AVX-512), else 4. */
#if FL_VBYTES == 64
#define FL__XU 8
#else
#define FL__XU 4
#endif
#define FL__EACH_MAX 8 /* the most vectors FL__EACH unrolls: a lockstep of more runs as a loop over memory */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define FL__EACH(j, n) _Pragma("GCC unroll 8") for (int j = 0; j < (n); j++)
#else
#define FL__EACH(j, n) for (int j = 0; j < (n); j++)
#endif

/* expm1(r) = r + r^2 P(r) for x = k ln2 + r, |r| <= ln2 / 2: fl_exp_f32's reduction and polynomial, FMA where
 * the level has it, into q (full relative accuracy for small r: no 1 added); t[j] holds k + 1.5 * 2^23 (k in its
 * low mantissa bits). |x| <= 104 or nan. The callers apply 2^k. n <= FL__XU. one_step: r = x - k ln2 with ln2
 * rounded to float (2e-9 off), and q = exp(r) itself, 1 + r (1 + r P) (within ~1 ulp: the inner sum's rounding
 * weighs r <= 0.35 of an ulp), for sums only: see fl__vexp_nonpos_sum_f32_n. */
FL_INLINE void fl__vexpm1_reduced_f32_n_of(const fl_vf *x, fl_vf *t, fl_vf *q, const int n, const int one_step)
{
    fl_vf r[FL__XU];
    FL__EACH(j, n) t[j] = FL__VFMA(x[j], (fl_vf){0} + 1.44269504088896341f, (fl_vf){0} + FL__MAGIC_F32);
    if (one_step)
        FL__EACH(j, n) r[j] = FL__VFMA(t[j] - FL__MAGIC_F32, (fl_vf){0} - 0.693147182464599609375f, x[j]);
    else
        FL__EACH(j, n) {
            r[j] = FL__VFMA(t[j] - FL__MAGIC_F32, (fl_vf){0} - 6.93145751953125e-1f, x[j]);
            r[j] = FL__VFMA(t[j] - FL__MAGIC_F32, (fl_vf){0} - 1.42860682030941723212e-6f, r[j]);
        }
    FL__EACH(j, n) q[j] = FL__VFMA((fl_vf){0} + FL__EXPF_C6, r[j], (fl_vf){0} + FL__EXPF_C5);
    FL__EACH(j, n) q[j] = FL__VFMA(q[j], r[j], (fl_vf){0} + FL__EXPF_C4);
    FL__EACH(j, n) q[j] = FL__VFMA(q[j], r[j], (fl_vf){0} + FL__EXPF_C3);
    FL__EACH(j, n) q[j] = FL__VFMA(q[j], r[j], (fl_vf){0} + FL__EXPF_C2);
    if (one_step) /* the sums' exp itself, 1 + r (1 + r P): two FMAs where expm1 and the 1 added took three */
        FL__EACH(j, n) q[j] = FL__VFMA(FL__VFMA(q[j], r[j], (fl_vf){0} + 1.0f), r[j], (fl_vf){0} + 1.0f);
    else
        FL__EACH(j, n) q[j] = FL__VFMA(q[j] * r[j], r[j], r[j]);
}
FL_INLINE void fl__vexpm1_reduced_f32_n(const fl_vf *x, fl_vf *t, fl_vf *q, const int n)
{
    fl__vexpm1_reduced_f32_n_of(x, t, q, n, 0);
}
/* exp(r) = 1 + expm1(r), the same reduction (the callers apply 2^k) */
FL_INLINE void fl__vexp_reduced_f32_n_of(const fl_vf *x, fl_vf *t, fl_vf *p, const int n, const int one_step)
{
    fl__vexpm1_reduced_f32_n_of(x, t, p, n, one_step);
    if (!one_step) FL__EACH(j, n) p[j] = p[j] + 1.0f;
}
FL_INLINE void fl__vexp_reduced_f32_n(const fl_vf *x, fl_vf *t, fl_vf *p, const int n)
{
    fl__vexp_reduced_f32_n_of(x, t, p, n, 0);
}
FL_INLINE fl_vf fl__vexp_reduced_f32(fl_vf x, fl_vf *t)
{
    fl_vf p;
    fl__vexp_reduced_f32_n(&x, t, &p, 1);
    return p;
}

/* exp(v[j]) in place, for the sums of the softmax family (v <= 0 or nan): as fl__vexp_nonpos_f32_n, but
 * arguments below -87.34 are clamped with one max instead of being flushed to 0 by a compare and a blend, so
 * they give 2^-126 instead of 0 (without AVX-512): at most 2^-126 per element, nothing next to a sum that is
 * >= 1 (and -inf stays out of the sums that need it exactly: see fl_sum_exp_shifted). Two instructions fewer
 * per vector, on the hottest loop; with AVX-512, vscalefps does the scaling exactly in one.
 * And the reduction in one step, r = x - k ln2f (ln2f = ln2 + 1.9e-9, one FMA instead of two: the loop's vector
 * units are its bound): a term exp(x) with x ~ k ln2 is off by k 1.9e-9 of itself, below 2^-24 for |k| < 31;
 * in a sum (>= 1, or the others' sum of a tiny loss, summed exactly below 2^-10) the terms with larger |k|
 * weigh less than that. v may be up to 64 here (T_SUM_EXP_MAX's rebase): 2^k stays a normal float. */
FL_INLINE void fl__vexp_nonpos_sum_f32_n_of(fl_vf *v, const int n, const int one_step)
{
    fl_vf t[FL__XU], p[FL__XU];
#ifdef FL__VSCALE
    /* vscalefps: 2^k in one instruction, and exact: arguments down to -104 give the subnormal or 0 results */
    FL__EACH(j, n) v[j] = FL__VMAX_KEEP_NAN((fl_vf){0} - 104.0f, v[j]);
    fl__vexp_reduced_f32_n_of(v, t, p, n, one_step);
    FL__EACH(j, n) v[j] = FL__VSCALE(p[j], t[j] - FL__MAGIC_F32);
#else
    FL__EACH(j, n) v[j] = FL__VMAX_KEEP_NAN((fl_vf){0} - 87.33654f, v[j]);
    fl__vexp_reduced_f32_n_of(v, t, p, n, one_step);
    FL__EACH(j, n) v[j] = p[j] * (fl_vf)(((fl_vfi)t[j] - (fl_vfi)((fl_vf){0} + FL__MAGIC_F32) + 127) << 23);
#endif
}
FL_INLINE void fl__vexp_nonpos_sum_f32_n(fl_vf *v, const int n) { fl__vexp_nonpos_sum_f32_n_of(v, n, 1); }
FL_INLINE fl_vf fl__vexp_nonpos_sum_f32(fl_vf x)
{
    fl__vexp_nonpos_sum_f32_n(&x, 1);
    return x;
}

/* exp(v[j]) in place for v <= 0 or nan, the only arguments the softmax family forms (x - max): fl_exp_f32's
 * reduction and polynomial with one scale step; results below 2^-126 (v < -87.34) are flushed to 0 (they are
 * under 1e-38 of a sum that is >= 1) without AVX-512; exp(-inf) = 0; nan stays nan. */
FL_INLINE void fl__vexp_nonpos_f32_n(fl_vf *v, const int n)
{
#ifdef FL__VSCALE
    /* exact to the subnormals and 0 (-inf gives 0), in fewer instructions; elements: the two-step reduction */
    fl__vexp_nonpos_sum_f32_n_of(v, n, 0);
#else
    fl_vfi tiny[FL__XU];
    fl_vf t[FL__XU], p[FL__XU];
    FL__EACH(j, n) tiny[j] = v[j] < -87.33654f;
    FL__EACH(j, n) v[j] = fl__vf_blend(tiny[j], (fl_vf){0} - 87.33654f, v[j]);
    fl__vexp_reduced_f32_n(v, t, p, n);
    FL__EACH(j, n) {
        const fl_vfi ki = (fl_vfi)t[j] - (fl_vfi)((fl_vf){0} + FL__MAGIC_F32);
        v[j] = (fl_vf)(~tiny[j] & (fl_vfi)(p[j] * (fl_vf)((ki + 127) << 23)));
    }
#endif
}
FL_INLINE fl_vf fl__vexp_nonpos_f32(fl_vf x)
{
    fl__vexp_nonpos_f32_n(&x, 1);
    return x;
}

#if !defined(__AVX__) && defined(__SSE2__)
#include <emmintrin.h>
#endif
/* whether any lane of a mask (lanes all ones or all zeros, of any width) is set: one test instruction */
FL_INLINE int fl__any_lane(fl_vfi m)
{
#if defined(__AVX512F__) && FL_VBYTES == 64
    return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
#elif defined(__AVX__) && FL_VBYTES == 32
    return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#elif defined(__SSE2__) && FL_VBYTES == 16
    return _mm_movemask_epi8((__m128i)m) != 0;
#else
    int any = 0;
    for (int l = 0; l < FL_VF_N; l++) any |= m[l] != 0;
    return any;
#endif
}

/* exp(v[j]) in place for any float v, as fl_exp_f32 (same reduction and polynomial, FMA where the level has
 * it): v is clamped to [-104, 104] (nan kept), and 2^k applied by vscalefps with AVX-512, else in two steps, so
 * that results near FLT_MAX do not overflow early and subnormal results are rounded once. For the element-wise
 * losses (exponential, logistic, binary cross-entropy), whose arguments have either sign. */
FL_INLINE void fl__vexp_f32_n(fl_vf *v, const int n)
{
    fl_vf t[FL__XU], p[FL__XU];
    FL__EACH(j, n) v[j] = FL__VMAX_KEEP_NAN((fl_vf){0} - 104.0f, FL__VMIN_KEEP_NAN((fl_vf){0} + 104.0f, v[j]));
    fl__vexp_reduced_f32_n(v, t, p, n);
#ifdef FL__VSCALE
    FL__EACH(j, n) v[j] = FL__VSCALE(p[j], t[j] - FL__MAGIC_F32);
#else
    FL__EACH(j, n) {
        const fl_vfi k = (fl_vfi)t[j] - (fl_vfi)((fl_vf){0} + FL__MAGIC_F32), k1 = k >> 1, k2 = k - k1;
        v[j] = (p[j] * (fl_vf)((k1 + 127) << 23)) * (fl_vf)((k2 + 127) << 23);
    }
#endif
}
/* The same bits, for arguments usually within [-87.33, 87.33] (the losses whose exp is the whole of their work:
 * exponential, Poisson, Tweedie): without AVX-512, where every lane of the n vectors is, 2^k is a normal float
 * (|k| <= 126), applied in one multiplication, unclamped (exact either way): 4 instructions a vector fewer, for
 * a test and a branch a step (10M float32 exponential_loss 2-9% faster in interleaved runs; logistic_loss, whose
 * exp is a third of its work, was 4-8% slower with it). */
FL_INLINE void fl__vexp_mid_f32_n(fl_vf *v, const int n)
{
#ifndef FL__VSCALE
    fl_vfi out = (fl_vfi){0}; /* lanes outside [-87.33, 87.33] or nan (the compare is false for nan) */
    FL__EACH(j, n) out |= ~((fl_vf)((fl_vfi)v[j] & INT32_MAX) <= 87.33654f);
    if (!fl__any_lane(out)) {
        fl_vf t[FL__XU], p[FL__XU];
        fl__vexp_reduced_f32_n(v, t, p, n);
        FL__EACH(j, n) v[j] = p[j] * (fl_vf)(((fl_vfi)t[j] - (fl_vfi)((fl_vf){0} + FL__MAGIC_F32) + 127) << 23);
        return;
    }
#endif
    fl__vexp_f32_n(v, n);
}
FL_INLINE fl_vf fl__vexp_f32(fl_vf x)
{
    fl__vexp_f32_n(&x, 1);
    return x;
}

/* 1 / u for normal u, within 1 ulp: the approximate reciprocal (vrcp14ps, vrcpps) and one Newton step (a
 * division of 16 floats takes ~16 cycles of one port; these, 3 instructions). Plain division without them. */
FL_INLINE fl_vf fl__vrcp_f32(fl_vf u)
{
#ifdef FL__VRCP_APPROX
    const fl_vf inv = FL__VRCP_APPROX(u);
    return FL__VFMA(inv, FL__VFMA(0.0f - u, inv, (fl_vf){0} + 1.0f), inv);
#else
    return 1.0f / u;
#endif
}

/* log(u[j]) + c[j] for normal positive floats u and small c (a correction, |c| <= 2^-23 or so, added among the
 * small terms), into out: fl_log_f32's split u = 2^ex m, m in [sqrt(1/2), sqrt(2)), and polynomial, FMA where
 * the level has it; n vectors in lockstep. Not for 0, subnormals, inf or nan (the callers see to it). */
FL_INLINE void fl__vlog_normal_f32_n(const fl_vf *u, const fl_vf *c, fl_vf *out, const int n)
{
    fl_vf ex[FL__XU], f[FL__XU], f2[FL__XU], hi[FL__XU], q[FL__XU];
    FL__EACH(j, n) {
        const fl_vfi ix = (fl_vfi)u[j] - 0x3f3504f3;
        ex[j] = __builtin_convertvector(ix >> 23, fl_vf);
        f[j] = (fl_vf)((ix & 0x007fffff) + 0x3f3504f3) - 1.0f;
    }
    /* Estrin's scheme: a dependency chain of 5 operations instead of Horner's 9 */
    FL__EACH(j, n) f2[j] = f[j] * f[j];
    FL__EACH(j, n) {
        const fl_vf q910 = FL__VFMA((fl_vf){0} + FL__LOGF_C10, f[j], (fl_vf){0} + FL__LOGF_C9);
        const fl_vf q78 = FL__VFMA((fl_vf){0} + FL__LOGF_C8, f[j], (fl_vf){0} + FL__LOGF_C7);
        hi[j] = FL__VFMA(f2[j], FL__VFMA((fl_vf){0} + FL__LOGF_C11, f2[j], q910), q78);
    }
    FL__EACH(j, n) {
        const fl_vf q34 = FL__VFMA((fl_vf){0} + FL__LOGF_C4, f[j], (fl_vf){0} + FL__LOGF_C3);
        const fl_vf q56 = FL__VFMA((fl_vf){0} + FL__LOGF_C6, f[j], (fl_vf){0} + FL__LOGF_C5);
        q[j] = FL__VFMA(f2[j] * f2[j], hi[j], FL__VFMA(f2[j], q56, q34));
    }
    FL__EACH(j, n) {
        const fl_vf y = FL__VFMA(f2[j] * f[j], q[j], -0.5f * f2[j]);
        /* ln2 = 0.693359375 - 2.12194440e-4: ex * hi exact, small terms first */
        out[j] = FL__VFMA(ex[j], (fl_vf){0} + 0.693359375f,
                          f[j] + (y + FL__VFMA(ex[j], (fl_vf){0} - 2.12194440e-4f, c[j])));
    }
}
FL_INLINE fl_vf fl__vlog_normal_f32(fl_vf u, fl_vf c)
{
    fl_vf out;
    fl__vlog_normal_f32_n(&u, &c, &out, 1);
    return out;
}

/* The same, log(u[j]) for normal positive u, with an 8-entry table where the
 * level has a one-instruction lookup of a vector register (vpermps; AVX-512: the 16 lanes hold the table twice):
 * u = 2^k m, m in [OFF, 2 OFF) (OFF = 0x3f355556 = 0.708), the top 3 bits of m - OFF pick c_i near m,
 * z = m / c_i - 1 = fma(m, invc_i, -1) (|z| <= 0.057, rounded once), and
 *   log u = k ln2 + log c_i + log1p(z),  log1p(z) = z + z^2 (C2 + C3 z + C4 z^2 + C5 z^3)
 * (minimax, relative error 2^-27; tools/vmath/fit.py's remez). invc_i is the float near 1 / (the interval's
 * middle) whose logc_i = -log(invc_i) is within 2^-36 of a float (searched), so the identity is exact to that;
 * invc_i = 1, logc_i = 0 for the interval around 1, [0.958, 1.042): there the result is log1p(z) of an exact z,
 * to full relative accuracy. Within 1.231 ulp over every normal float (all 2^31 checked against log in double;
 * the worst just outside that interval, where logc_i and log1p(z) cancel) where fl__vlog_normal_f32_n is within
 * 0.82. 7 multiplications and FMAs a vector instead of fl__vlog_normal_f32_n's 16 (degree 11, no table): those
 * are the ports the kl row loop waits on. */
#if (defined(__AVX512F__) && FL_VF_N == 16) || (defined(__AVX2__) && defined(__FMA__) && FL_VF_N == 8)
#define FL__HAVE_LOG_TAB 1 /* fl__vlog_tab_normal_f32_n is the table log (else fl__vlog_normal_f32_n) */
#define FL__LOGT_OFF 0x3f355556
#define FL__LOGT_INVC 1.352059126e+00f, 1.247074842e+00f, 1.156869173e+00f, 1.078861117e+00f, \
                      1.000000000e+00f, 9.056468606e-01f, 8.137292266e-01f, 7.383241057e-01f
#define FL__LOGT_LOGC -3.016287088e-01f, -2.208006829e-01f, -1.457173675e-01f, -7.590596378e-02f, \
                      0.0f, 9.910582751e-02f, 2.061276138e-01f, 3.033723831e-01f
#if FL_VF_N == 16
#define FL__LOGT_LOOKUP(tab, i) ((fl_vf)_mm512_permutexvar_ps((__m512i)(i), (__m512)(tab)))
#define FL__LOGT_TAB(list) ((fl_vf){list, list})
#else
#define FL__LOGT_LOOKUP(tab, i) ((fl_vf)_mm256_permutevar8x32_ps((__m256)(tab), (__m256i)(i)))
#define FL__LOGT_TAB(list) ((fl_vf){list})
#endif
/* The table log's split of a normal positive u: u = 2^k m, m in [OFF, 2 OFF), and the table's invc_i, logc_i for
 * m (shared by the two table logs below) */
FL_INLINE void fl__logt_split(fl_vf u, fl_vf *k, fl_vf *m, fl_vf *invc, fl_vf *logc)
{
    const fl_vf invc_tab = FL__LOGT_TAB(FL__LOGT_INVC), logc_tab = FL__LOGT_TAB(FL__LOGT_LOGC);
    const fl_vfi t = (fl_vfi)u - FL__LOGT_OFF;
    const fl_vfi i = t >> 20; /* the lookup reads the index's low 3 (AVX-512: 4) bits */
    *k = __builtin_convertvector(t >> 23, fl_vf);
    *m = (fl_vf)((t & 0x007fffff) + FL__LOGT_OFF);
    *invc = FL__LOGT_LOOKUP(invc_tab, i);
    *logc = FL__LOGT_LOOKUP(logc_tab, i);
}
/* The table log's parts: u = 2^k m, lm = logc_i + log1p(z) rounded (log m but for its roundings), z */
FL_INLINE void fl__vlog_tab_parts_f32_n(const fl_vf *u, fl_vf *k, fl_vf *lm, fl_vf *z, const int n)
{
    fl_vf logc[FL__XU], z2[FL__XU];
    FL__EACH(j, n) {
        fl_vf m, invc;
        fl__logt_split(u[j], &k[j], &m, &invc, &logc[j]);
        z[j] = FL__VFMA(m, invc, (fl_vf){0} - 1.0f);
    }
    FL__EACH(j, n) z2[j] = z[j] * z[j];
    FL__EACH(j, n) {
        const fl_vf p23 = FL__VFMA((fl_vf){0} + 3.333326381e-01f, z[j], (fl_vf){0} - 4.999994450e-01f);
        const fl_vf p45 = FL__VFMA((fl_vf){0} + 2.006637055e-01f, z[j], (fl_vf){0} - 2.506816355e-01f);
        lm[j] = logc[j] + FL__VFMA(z2[j], FL__VFMA(p45, z2[j], p23), z[j]);
    }
}
FL_INLINE void fl__vlog_tab_normal_f32_n(const fl_vf *u, fl_vf *out, const int n)
{
    fl_vf k[FL__XU], lm[FL__XU], z[FL__XU];
    fl__vlog_tab_parts_f32_n(u, k, lm, z, n);
    /* k ln2 with ln2 rounded to float (0.693147182, 1.9e-9 over): k times that error is under 0.06 ulp of
     * |log u| >= (|k| - 1/2) ln2 for any k != 0, so no hi/lo split (two operations a vector fewer) */
    FL__EACH(j, n) out[j] = FL__VFMA(k[j], (fl_vf){0} + 0.693147182f, lm[j]);
}

/* log(u[j]) for normal positive floats u as an unevaluated pair of floats, hi[j] + lo[j], within FL__VLOG_FF_ERR
 * of log u absolutely (|lo| < 8e-5): for a difference log u - x that cancels (kl_div's log p - log q), where a
 * float log's 1.2 ulp of |log u| would be most of it. The table log's split, every large part kept exact:
 *   h = m invc_i rounded, zlo = m invc_i - h (one FMA, exact), zhi = h - 1 (exact: h in [0.94, 1.06]), so
 *   z = zhi + zlo exactly;  log1p(z) = zhi - zhi^2 / 2 + zhi^3 P(zhi) + zlo / (1 + zhi) + O(zlo^2)
 *   log u = k ln2 + logc_i + log1p(z),  k ln2 = P + Pe (P = k ln2f rounded, Pe by FMA: exact) + k (ln2 - ln2f)
 * hi = ((P + logc_i) + zhi) - z2 / 2 (z2 = zhi^2 rounded, z2 / 2 exact) with each addition's error kept
 * (Fast2Sum: |P| >= 0.69 > |logc_i| unless P = 0; |P + logc_i| >= 0.076 > |zhi| unless it is 0; and then
 * |zhi| > z2 / 2); lo sums those errors and the small terms: zhi^3 P(zhi) (P fitted over |zhi| <= 0.0567,
 * 3.6e-12 off), zlo / (1 + zhi) as zlo (1 - zhi + zhi^2) (|zlo| <= 2^-24: 1.1e-11 off), zhi^2 - z2 (by FMA), Pe
 * and k (ln2 - ln2f). The error: 3.3e-12 (logc_i's distance to -log invc_i), 3.6e-12, 1.1e-11, the float
 * roundings of the small terms and of lo's sums (2^-24 of at most 8e-5 each, ~2.5e-11 together): below 4.5e-11.
 * Two vectors in lockstep (the chain is ~40 operations long; all n at once spilled: 25% slower), one where there
 * are 16 vector registers (AVX2: its ~20 constants already spill; two at once, kl_div batchmean 256 x 1,000
 * float32 in L2, one thread, 0.293-0.303 -> 0.279-0.284 ms, 65,536 x 1,000 on 2 threads 36.3-37.2 -> 32.6-35.8 ms,
 * alternating processes on the Intel Xeon at FASTLOSS_SIMD=avx2; at AVX-512 one at a time was no faster). The
 * same operations on each lane either way: the same bits. */
#define FL__VLOG_FF_ERR 5e-11
FL_INLINE void fl__vlog_ff_f32_n(const fl_vf *u, fl_vf *hi, fl_vf *lo, const int n)
{
    const fl_vf ln2f = (fl_vf){0} + 0.693147182f;
    enum { STEP = FL_VF_N == 8 ? 1 : 2 };
    fl_vf k[STEP], logc[STEP], zhi[STEP], zlo[STEP], z2[STEP], P[STEP], s1[STEP], s2[STEP];
    for (int j0 = 0; j0 < n; j0 += STEP) {
        const int m2 = n - j0 < STEP ? n - j0 : STEP;
        FL__EACH(j, m2) {
            fl_vf m, invc;
            fl__logt_split(u[j0 + j], &k[j], &m, &invc, &logc[j]);
            const fl_vf h = m * invc;
            zlo[j] = FL__VFMA(m, invc, -h);
            zhi[j] = h - 1.0f;
        }
        FL__EACH(j, m2) {
            z2[j] = zhi[j] * zhi[j];
            P[j] = k[j] * ln2f;
        }
        FL__EACH(j, m2) {
            s1[j] = P[j] + logc[j];
            s2[j] = s1[j] + zhi[j];
        }
        FL__EACH(j, m2) {
            const fl_vf p = FL__VFMA(FL__VFMA((fl_vf){0} + 1.510101e-01f, z2[j],
                                              FL__VFMA((fl_vf){0} - 1.6705474e-01f, zhi[j], (fl_vf){0} + 1.9997492e-01f)),
                                     z2[j], FL__VFMA((fl_vf){0} - 2.4999987e-01f, zhi[j], (fl_vf){0} + 3.3333334e-01f));
            const fl_vf Pe = FL__VFMA(k[j], (fl_vf){0} - 1.9046542999e-09f, FL__VFMA(k[j], ln2f, -P[j]));
            const fl_vf c = FL__VFMA((fl_vf){0} - 0.5f, FL__VFMA(zhi[j], zhi[j], -z2[j]),
                                     FL__VFMA(zlo[j], z2[j] - zhi[j], zlo[j]));
            const fl_vf small = FL__VFMA(z2[j] * zhi[j], p, c + Pe);
            const fl_vf hz = -0.5f * z2[j], s3 = s2[j] + hz;
            hi[j0 + j] = s3;
            lo[j0 + j] = ((logc[j] - (s1[j] - P[j])) + (zhi[j] - (s2[j] - s1[j]))) + ((hz - (s3 - s2[j])) + small);
        }
    }
}
#define FL__HAVE_LOG_FF 1
#undef FL__LOGT_LOOKUP
#undef FL__LOGT_TAB
#undef FL__LOGT_INVC
#undef FL__LOGT_LOGC
#undef FL__LOGT_OFF
#else
FL_INLINE void fl__vlog_tab_normal_f32_n(const fl_vf *u, fl_vf *out, const int n)
{
    fl_vf c[FL__XU];
    FL__EACH(j, n) c[j] = (fl_vf){0};
    fl__vlog_normal_f32_n(u, c, out, n);
}
#endif

/* log(x[j]) into out for any float x, as fl_log_f32: subnormals scaled by 2^23 into fl__vlog_normal_f32_n's
 * range (the 23 ln2 taken off after), 0 gives -inf, a negative x nan, inf inf, nan nan. n vectors in lockstep. */
FL_INLINE void fl__vlog_f32_n(const fl_vf *x, fl_vf *out, const int n)
{
    fl_vf u[FL__XU], c[FL__XU];
    fl_vfi sub[FL__XU];
    FL__EACH(j, n) {
        sub[j] = x[j] < 0x1p-126f; /* and 0, negatives: replaced below */
        u[j] = fl__vf_blend(sub[j], x[j] * 0x1p23f, x[j]);
        c[j] = (fl_vf){0};
    }
    fl__vlog_normal_f32_n(u, c, out, n);
    FL__EACH(j, n) {
        fl_vf r = out[j] - (fl_vf)(sub[j] & (fl_vfi)((fl_vf){0} + 15.942385152878742f)); /* 23 ln2 */
        r = fl__vf_blend(x[j] < 0.0f, (fl_vf){0} + NAN, r);
        r = fl__vf_blend(x[j] == 0.0f, (fl_vf){0} - INFINITY, r);
        r = fl__vf_blend(x[j] == INFINITY, x[j], r);
        out[j] = fl__vf_blend(x[j] != x[j], x[j], r);
    }
}

/* expm1(a[j]) into out for a in [-1, 1] (or nan): k = rint(a / ln2) in {-1, 0, 1}, 2^k expm1(r) + (2^k - 1),
 * no cancellation for these k (fl_expm1_f32 does it in double for any a). n vectors in lockstep. */
FL_INLINE void fl__vexpm1_unit_f32_n(const fl_vf *a, fl_vf *out, const int n)
{
    fl_vf t[FL__XU], q[FL__XU];
    fl__vexpm1_reduced_f32_n(a, t, q, n);
    FL__EACH(j, n) {
        const fl_vf s = (fl_vf)(((fl_vfi)t[j] - (fl_vfi)((fl_vf){0} + FL__MAGIC_F32) + 127) << 23); /* 2^k */
        out[j] = FL__VFMA(s, q[j], s - 1.0f);
    }
}

/* log(1 + e[j]) for e in [0, 1] (or nan) into out, and 1 / (1 + e[j]) (to 1 ulp) into inv_u: the softplus of
 * the losses on logits, whose e is exp(-|x|). u = 1 + e is rounded; log u is fl_log_f32's split and polynomial
 * (u is normal, in [1, 2]), and c = (e - (u - 1)) / u (u - 1 is exact) restores what the rounding of u lost.
 * Within 2 float ulps. n vectors in lockstep. */
FL_INLINE void fl__vlog1p_unit_f32_n(const fl_vf *e, fl_vf *out, fl_vf *inv_u, const int n)
{
    fl_vf u[FL__XU], c[FL__XU];
    FL__EACH(j, n) u[j] = e[j] + 1.0f;
    FL__EACH(j, n) inv_u[j] = fl__vrcp_f32(u[j]);
    FL__EACH(j, n) c[j] = (e[j] - (u[j] - 1.0f)) * inv_u[j];
#ifdef FL__HAVE_LOG_TAB
    /* the table log (half the FMAs), c added after it: within 1.60 ulp over every float e in [0, 1] (1.34
     * with fl__vlog_normal_f32_n; all 2^30 checked against log1p in double) */
    fl__vlog_tab_normal_f32_n(u, out, n);
    FL__EACH(j, n) out[j] += c[j];
#else
    fl__vlog_normal_f32_n(u, c, out, n);
#endif
}

/* fl_exp_f64's polynomial p(r) (exp(r) = 1 + r + r^2 p(r)) of n reduced arguments, in lockstep */
FL_INLINE void fl__vexp_poly_f64_n(const fl_vd *r, fl_vd *p, const int n)
{
    FL__EACH(j, n) p[j] = FL__VDFMA((fl_vd){0} + FL__EXP_C11, r[j], (fl_vd){0} + FL__EXP_C10);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C9);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C8);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C7);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C6);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C5);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C4);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C3);
    FL__EACH(j, n) p[j] = FL__VDFMA(p[j], r[j], (fl_vd){0} + FL__EXP_C2);
}

/* the same for double (in place, n <= 2 FL__XU vectors in lockstep: a float vector's two halves), fl_exp_f64's
 * reduction and polynomial, results below 2^-1022 (v < -708.39) flushed; valid up to v = 709 */
FL_INLINE void fl__vexp_nonpos_f64_n(fl_vd *v, const int n)
{
    fl_vdi tiny[2 * FL__XU];
    fl_vd t[2 * FL__XU], r[2 * FL__XU], p[2 * FL__XU];
    FL__EACH(j, n) tiny[j] = v[j] < -708.3964185322641;
    FL__EACH(j, n) v[j] = fl__vd_blend(tiny[j], (fl_vd){0} - 708.3964185322641, v[j]);
    FL__EACH(j, n) t[j] = FL__VDFMA(v[j], (fl_vd){0} + 1.44269504088896340736, (fl_vd){0} + FL__MAGIC_F64);
    FL__EACH(j, n) r[j] = FL__VDFMA(t[j] - FL__MAGIC_F64, (fl_vd){0} - FL__LN2_HI, v[j]);
    FL__EACH(j, n) r[j] = FL__VDFMA(t[j] - FL__MAGIC_F64, (fl_vd){0} - FL__LN2_LO, r[j]);
    fl__vexp_poly_f64_n(r, p, n);
    FL__EACH(j, n) {
        const fl_vdi ki = (fl_vdi)t[j] - (fl_vdi)((fl_vd){0} + FL__MAGIC_F64);
        v[j] = (fl_vd)(~tiny[j] & (fl_vdi)((1.0 + FL__VDFMA(r[j] * r[j], p[j], r[j])) * (fl_vd)((ki + 1023) << 52)));
    }
}
FL_INLINE fl_vd fl__vexp_nonpos_f64(fl_vd x)
{
    fl__vexp_nonpos_f64_n(&x, 1);
    return x;
}
/* The same for |v| <= 80 (the exps of the gradients of poisson_nll and tweedie, fl__exp_minus_y_f64): its bits
 * there, without the clamp and flush, and 2^k from the rounding's own bits (a magic number 1023 more: the low 12
 * bits of t are then k + 1023, shifted into the exponent field). 5 instructions of ~25 a vector fewer: AVX2,
 * 10M float32, 2 threads, tweedie_loss_grad_hess 11.9 -> 10.1-10.8 ms, poisson_nll_loss_grad_hess 8.1 -> 7.0-7.7;
 * AVX-512 8.1 -> 7.3, 5.6 -> 5.0 (interleaved, medians). */
FL_INLINE void fl__vexp_near_f64_n(fl_vd *v, const int n)
{
    const double magic = FL__MAGIC_F64 + 1023.0;
    fl_vd t[2 * FL__XU], r[2 * FL__XU], p[2 * FL__XU];
    FL__EACH(j, n) t[j] = FL__VDFMA(v[j], (fl_vd){0} + 1.44269504088896340736, (fl_vd){0} + magic);
    FL__EACH(j, n) r[j] = FL__VDFMA(t[j] - magic, (fl_vd){0} - FL__LN2_HI, v[j]);
    FL__EACH(j, n) r[j] = FL__VDFMA(t[j] - magic, (fl_vd){0} - FL__LN2_LO, r[j]);
    fl__vexp_poly_f64_n(r, p, n);
    FL__EACH(j, n) v[j] = (1.0 + FL__VDFMA(r[j] * r[j], p[j], r[j])) * (fl_vd)((fl_vdi)t[j] << 52);
}

/* log(v[j]) in place for positive normal doubles (anything else: garbage the caller replaces), n <= 2 FL__XU
 * vectors in lockstep: fl_log_f64's split and fdlibm kernel, the same operations in the same order (no FMA
 * contraction here), so the same bits. For float data whose loss needs a log good to 2^-53 (kl_div's y log y -
 * y x cancels where log y ~ x): ~20 operations and a division a vector instead of a call an element. */
FL_INLINE void fl__vlog_pos_f64_n(fl_vd *v, const int n)
{
    fl_vd e[2 * FL__XU], f[2 * FL__XU], s[2 * FL__XU];
    FL__EACH(j, n) {
        typedef uint64_t vdu __attribute__((vector_size(FL_VBYTES))); /* a logical shift: AVX2 has no vpsraq */
        const fl_vdi ix = (fl_vdi)v[j] - 0x3fe6a09e667f3bcdLL;
        const fl_vdi eb = (fl_vdi)((vdu)(ix + 0x3ff0000000000000LL) >> 52); /* e + 1023 */
        e[j] = (fl_vd)(eb | 0x4330000000000000LL) - (0x1p52 + 1023.0);
        f[j] = (fl_vd)((ix & 0x000fffffffffffffLL) + 0x3fe6a09e667f3bcdLL) - 1.0;
        s[j] = f[j] / (2.0 + f[j]);
    }
    FL__EACH(j, n) {
        const fl_vd hfsq = 0.5 * f[j] * f[j], z = s[j] * s[j], w = z * z;
        const fl_vd t1 = w * (FL__LG2 + w * (FL__LG4 + w * FL__LG6));
        const fl_vd t2 = z * (FL__LG1 + w * (FL__LG3 + w * (FL__LG5 + w * FL__LG7)));
        const fl_vd R = t2 + t1;
        v[j] = e[j] * FL__LN2_HI - ((hfsq - (s[j] * (hfsq + R) + (e[j] * FL__LN2_LO + 0.0))) - f[j]);
    }
}

/* The same, log(v[j]) for positive normal doubles, from a 16-entry table where the level has a one-instruction
 * lookup of 16 doubles (AVX-512: vpermt2pd over two registers): v = 2^k m, m in [OFF, 2 OFF) (OFF = 0.703125),
 * the top 4 bits of m - OFF pick c_i near m (the 16 intervals; 1 in the middle of the 10th, where invc_i = 1),
 * z = fma(m, invc_i, -1) (|z| <= 1/32), and
 *   log v = (k ln2hi + logc_i) + (k ln2lo + log1p(z)),  log1p(z) = z + z^2 (-1/2 + z Q(z)),
 * Q of degree 6 (a Chebyshev fit of (log1p z - z + z^2 / 2) / z^3 over |z| <= 0.0313: z^3 times its error within
 * 0.42 2^-53 of |z|), logc_i = -log(invc_i) rounded (invc_i = 1 / the interval's middle). Each term rounded once
 * to double, the sums two roundings: within ~2 ulp of |log v| (+ |logc_i| where they cancel, below 2 |log v|), and
 * of the same relative accuracy as log1p(z) where v is within 3% of 1 (all the floats' 2^31 widened and 1.3e8
 * random doubles against logl: within 2.12 ulp, the worst at 0.984, below the middle interval). 22 operations
 * a vector, no division (fl__vlog_pos_f64_n: ~28 counted, and a division): kl_div's double path. */
#if defined(FL_VD_N) && defined(__FMA__)
/* log1p(z) for |z| <= 0.0313: z + z^2 (-1/2 + z Q(z)) */
FL_INLINE fl_vd fl__vlog1p_tab_f64(fl_vd z)
{
    const fl_vd z2 = z * z;
    fl_vd q = (fl_vd){0} + 0.11128927910795308;
    q = FL__VDFMA(q, z, (fl_vd){0} - 0.12517162777955937);
    q = FL__VDFMA(q, z, (fl_vd){0} + 0.14285703382031606);
    q = FL__VDFMA(q, z, (fl_vd){0} - 0.16666658256534891);
    q = FL__VDFMA(q, z, (fl_vd){0} + 0.200000000021353);
    q = FL__VDFMA(q, z, (fl_vd){0} - 0.25000000001030104);
    q = FL__VDFMA(q, z, (fl_vd){0} + 0.33333333333333265);
    return FL__VDFMA(z2, FL__VDFMA(z, q, (fl_vd){0} - 0.5), z);
}
/* The same to an absolute 2^-55.6 (Q of degree 5, a minimax of the absolute error over the table's z, [-0.0295,
 * 0.0313]: tools/vmath/fit.py), one FMA fewer: for a difference log v - x (kl_div's), where the error that counts
 * is absolute, below the double roundings of terms of that size (|log v| ~ 1 to 100) */
FL_INLINE fl_vd fl__vlog1p_tab_abs_f64(fl_vd z)
{
    const fl_vd z2 = z * z;
    fl_vd q = (fl_vd){0} - 0.125155189980525883;
    q = FL__VDFMA(q, z, (fl_vd){0} + 0.143078860520086476);
    q = FL__VDFMA(q, z, (fl_vd){0} - 0.166666597958899099);
    q = FL__VDFMA(q, z, (fl_vd){0} + 0.199999862577295684);
    q = FL__VDFMA(q, z, (fl_vd){0} - 0.250000000007688183);
    q = FL__VDFMA(q, z, (fl_vd){0} + 0.333333333358960260);
    return FL__VDFMA(z2, FL__VDFMA(z, q, (fl_vd){0} - 0.5), z);
}
#endif
#if defined(__AVX512F__) && defined(__AVX512DQ__) && FL_VF_N == 16
#define FL__HAVE_LOG_TAB_F64 1
/* its parts: v = 2^k m, log m = logc_i + log1p(z) */
FL_INLINE void fl__vlog_tab_parts_f64_n(const fl_vd *v, fl_vd *k, fl_vd *logc, fl_vd *z, const int n)
{
    const __m512d invc0 = _mm512_setr_pd(1.391304347826087, 1.3333333333333333, 1.28, 1.2307692307692308,
                                         1.1851851851851851, 1.1428571428571428, 1.103448275862069, 1.0666666666666667);
    const __m512d invc1 = _mm512_setr_pd(1.032258064516129, 1.0, 0.9411764705882353, 0.8888888888888888,
                                         0.8421052631578947, 0.8, 0.7619047619047619, 0.7272727272727273);
    const __m512d logc0 = _mm512_setr_pd(-0.3302416868705768, -0.28768207245178085, -0.2468600779315258,
                                         -0.20763936477824455, -0.16989903679539742, -0.13353139262452257,
                                         -0.09844007281325251, -0.06453852113757116);
    const __m512d logc1 = _mm512_setr_pd(-0.03174869831458027, 0.0, 0.060624621816434854, 0.11778303565638351,
                                         0.17185025692665928, 0.2231435513142097, 0.2719337154836418,
                                         0.3184537311185346);
    FL__EACH(j, n) {
        const fl_vdi t = (fl_vdi)v[j] - 0x3fe6800000000000LL;
        const __m512i i = (__m512i)(t >> 48); /* the lookup reads the index's low 4 bits: the top 4 of m - OFF */
        k[j] = __builtin_convertvector(t >> 52, fl_vd);
        const fl_vd m = (fl_vd)((t & 0x000fffffffffffffLL) + 0x3fe6800000000000LL);
        z[j] = FL__VDFMA(m, (fl_vd)_mm512_permutex2var_pd(invc0, i, invc1), (fl_vd){0} - 1.0);
        logc[j] = (fl_vd)_mm512_permutex2var_pd(logc0, i, logc1);
    }
}
FL_INLINE void fl__vlog_tab_pos_f64_n(fl_vd *v, const int n)
{
    fl_vd k[2 * FL__XU], logc[2 * FL__XU], z[2 * FL__XU];
    fl__vlog_tab_parts_f64_n(v, k, logc, z, n);
    FL__EACH(j, n) {
        const fl_vd l1p = fl__vlog1p_tab_f64(z[j]);
        v[j] = FL__VDFMA(k[j], (fl_vd){0} + FL__LN2_HI, logc[j]) + FL__VDFMA(k[j], (fl_vd){0} + FL__LN2_LO, l1p);
    }
}
/* The same where every v[j] is in the middle interval, [0.984375, 1.03125) (k = 0, invc = 1, logc = 0): log1p(v -
 * 1) alone, the same bits (z = v - 1 exactly either way; (0 ln2hi + 0) + (0 ln2lo + l1p) is l1p); 1 if it did,
 * else 0 (v untouched). Rows of a KL with q close to p have every ratio there: 9 operations a vector instead of
 * 22. */
FL_INLINE int fl__vlog_tab_mid_f64_n(fl_vd *v, const int n)
{
    __mmask8 out = 0;
    FL__EACH(j, n) out |= _mm512_cmp_pd_mask((__m512d)v[j], _mm512_set1_pd(0.984375), _CMP_NGE_UQ) |
                          _mm512_cmp_pd_mask((__m512d)v[j], _mm512_set1_pd(1.03125), _CMP_NLT_UQ);
    if (out) return 0;
    FL__EACH(j, n) v[j] = fl__vlog1p_tab_f64(v[j] - 1.0);
    return 1;
}
#elif defined(__AVX2__) && FL_VD_N == 4 && defined(__FMA__)
/* Without a one-instruction lookup of 16 doubles (AVX2: a gather, or vpermd over four registers and blends, a
 * table), log v lane by lane for positive normal doubles: log1p(v - 1) (fl__vlog1p_tab_f64, z = v - 1 exact) in
 * the middle interval [0.984375, 1.03125), fl__vlog_pos_f64_n's (fdlibm, a division) elsewhere, each lane's value
 * its own whatever its neighbours (both computed and blended where a vector has lanes of each). A KL with q close
 * to p has every ratio in the middle interval: 9 operations a vector. */
#define FL__HAVE_LOG_MID_F64 1
FL_INLINE void fl__vlog_mid_pos_f64_n(fl_vd *v, const int n)
{
    fl_vdi mid[2 * FL__XU], all = (fl_vdi){0} - 1;
    fl_vd w[2 * FL__XU];
    FL__EACH(j, n) {
        mid[j] = (v[j] >= 0.984375) & (v[j] < 1.03125);
        all &= mid[j];
    }
    int every = 1;
    for (int l = 0; l < FL_VD_N; l++) every &= all[l] != 0;
    if (!every) {
        FL__EACH(j, n) w[j] = v[j];
        fl__vlog_pos_f64_n(w, n);
    }
    FL__EACH(j, n) {
        const fl_vd l1p = fl__vlog1p_tab_f64(v[j] - 1.0);
        v[j] = every ? l1p : fl__vd_blend(mid[j], l1p, w[j]);
    }
}
#endif

/* max over x[0..n): nan if any element is nan, -inf if n == 0. Four running maxima (and nan flags): with one,
 * the loop waits on the latency of compare-and-blend (~6 cycles a vector; it was a third of the time of a
 * large-C logsumexp). MAX(m, v) ignores a nan v; the flags catch it. */
#define FL__MAX_BODY(VT, VIT, N, LOAD, LOAD_TAIL, MAX, T)                                     \
    VT m0 = (VT){0} - INFINITY, m1 = m0, m2 = m0, m3 = m0;                                    \
    VIT nan0 = (VIT){0}, nan1 = nan0, nan2 = nan0, nan3 = nan0;                               \
    long i = 0;                                                                               \
    for (; i + 4 * N <= n; i += 4 * N) {                                                      \
        const VT v0 = LOAD(x, i), v1 = LOAD(x, i + N);                                      \
        const VT v2 = LOAD(x, i + 2 * N), v3 = LOAD(x, i + 3 * N);                          \
        m0 = MAX(m0, v0);                                                                     \
        m1 = MAX(m1, v1);                                                                     \
        m2 = MAX(m2, v2);                                                                     \
        m3 = MAX(m3, v3);                                                                     \
        nan0 |= v0 != v0;                                                                     \
        nan1 |= v1 != v1;                                                                     \
        nan2 |= v2 != v2;                                                                     \
        nan3 |= v3 != v3;                                                                     \
    }                                                                                         \
    for (; i + N <= n; i += N) {                                                              \
        const VT v = LOAD(x, i);                                                             \
        m0 = MAX(m0, v);                                                                      \
        nan0 |= v != v;                                                                       \
    }                                                                                         \
    if (i < n) {                                                                              \
        const VT v = LOAD_TAIL(x, i, n - i);                                                 \
        m0 = MAX(m0, v);                                                                      \
        nan0 |= v != v;                                                                       \
    }                                                                                         \
    m0 = MAX(MAX(m0, m1), MAX(m2, m3));                                                       \
    nan0 |= nan1 | nan2 | nan3;                                                               \
    T r = -INFINITY;                                                                          \
    int any_nan = 0;                                                                          \
    for (int j = 0; j < N; j++) {                                                             \
        r = m0[j] > r ? m0[j] : r;                                                            \
        any_nan |= nan0[j] != 0;                                                              \
    }                                                                                         \
    return any_nan ? (T)NAN : r;

/* As the max above, and in *above the count of elements not <= xt (a nan counts; for top-k ranks): one read
 * of the row serves both. xt not nan (the caller gives such a row rank n). */
#define FL__MAX_COUNT_BODY(VT, VIT, N, LOAD, LOAD_TAIL, MAX, T)                               \
    VT m0 = (VT){0} - INFINITY, m1 = m0;                                                      \
    VIT nan0 = (VIT){0}, nan1 = nan0, ab0 = (VIT){0}, ab1 = ab0;                              \
    const VT xtv = (VT){0} + xt;                                                              \
    long i = 0;                                                                               \
    for (; i + 2 * N <= n; i += 2 * N) {                                                      \
        const VT v0 = LOAD(x, i), v1 = LOAD(x, i + N);                                        \
        m0 = MAX(m0, v0);                                                                     \
        m1 = MAX(m1, v1);                                                                     \
        nan0 |= v0 != v0;                                                                     \
        nan1 |= v1 != v1;                                                                     \
        ab0 -= ~(v0 <= xtv);                                                                  \
        ab1 -= ~(v1 <= xtv);                                                                  \
    }                                                                                         \
    for (; i + N <= n; i += N) {                                                              \
        const VT v = LOAD(x, i);                                                              \
        m0 = MAX(m0, v);                                                                      \
        nan0 |= v != v;                                                                       \
        ab0 -= ~(v <= xtv);                                                                   \
    }                                                                                         \
    if (i < n) { /* the padding (-inf) is <= xt */                                            \
        const VT v = LOAD_TAIL(x, i, n - i);                                                  \
        m0 = MAX(m0, v);                                                                      \
        nan0 |= v != v;                                                                       \
        ab0 -= ~(v <= xtv);                                                                   \
    }                                                                                         \
    m0 = MAX(m0, m1);                                                                         \
    nan0 |= nan1;                                                                             \
    ab0 += ab1;                                                                               \
    T r = -INFINITY;                                                                          \
    int any_nan = 0;                                                                          \
    long count = 0;                                                                           \
    for (int j = 0; j < N; j++) {                                                             \
        r = m0[j] > r ? m0[j] : r;                                                            \
        any_nan |= nan0[j] != 0;                                                              \
        count += (long)ab0[j];                                                                \
    }                                                                                         \
    *above += count;                                                                          \
    return any_nan ? (T)NAN : r;

#define FL__VD_MAX_IGNORE_NAN(m, v) fl__vd_blend((v) > (m), (v), (m))
#define FL__VF_LD_ST(x, i) fl__vf_load_st(x, i, st)
#define FL__VF_LD_TAIL_ST(x, i, k) fl__vf_load_tail_st(x, i, k, st)
#define FL__VD_LD(x, i) fl__vd_load((x) + (i))
#define FL__VD_LD_TAIL(x, i, k) fl__vd_load_tail((x) + (i), k)
/* x: float-computed data of storage kind st */
FL_INLINE float fl_max_st(const void *x, long n, const int st)
{
    FL__MAX_BODY(fl_vf, fl_vfi, FL_VF_N, FL__VF_LD_ST, FL__VF_LD_TAIL_ST, FL__VMAX_IGNORE_NAN, float)
}
FL_INLINE float fl_max_count_st(const void *x, long n, float xt, long *above, const int st)
{
    FL__MAX_COUNT_BODY(fl_vf, fl_vfi, FL_VF_N, FL__VF_LD_ST, FL__VF_LD_TAIL_ST, FL__VMAX_IGNORE_NAN, float)
}

static inline double fl_max_f64(const double *x, long n)
{
    FL__MAX_BODY(fl_vd, fl_vdi, FL_VD_N, FL__VD_LD, FL__VD_LD_TAIL, FL__VD_MAX_IGNORE_NAN, double)
}
static inline double fl_max_count_f64(const double *x, long n, double xt, long *above)
{
    FL__MAX_COUNT_BODY(fl_vd, fl_vdi, FL_VD_N, FL__VD_LD, FL__VD_LD_TAIL, FL__VD_MAX_IGNORE_NAN, double)
}

/* sum over x[0..n) of exp(x - shift) for x <= shift, accumulated in double. Four exps are added in float
 * (pairwise) before they are widened (two roundings of <= 2^-24 relative, on terms in (0, 1]): the widening
 * costs 5 instructions a vector, a quarter of the loop. `next`: n elements the caller reads next (the next chunk of a long row), are
 * prefetched meanwhile, a line per vector: otherwise memory idles while this loop computes from L1, and a
 * large-C logsumexp took the sum of the two times instead of the larger (pass x: nothing more is fetched). */
/* the prefetch of a line of the next chunk: into L2 only (prefetcht1) where far, else into L1 (the locality
 * must be a constant: one branch, taken the same way for a whole call) */
FL_INLINE void fl__prefetch_next(const void *p, const int far)
{
    if (far) __builtin_prefetch(p, 0, 2);
    else __builtin_prefetch(p, 0, 3);
}
FL_INLINE double fl_sum_exp_shifted_st(const void *x, long n, float shift, const void *next, const int st,
                                       double *diff, float *mx, float xt, long *above, const int far)
{
    /* far: next is prefetched into L2 only (prefetcht1), not L1: the chunks of long rows (FL_FAR_ROW).
     * diff (when not NULL): += sum of (x - shift), the float differences widened in fours as the exps (all <= 0:
     * no cancellation), for label smoothing: read in this pass rather than in one more.
     * mx (when not NULL): the max of x[0..n) in the same pass, nan ignored (a nan makes the sum nan), with x
     * allowed above shift (by at most 64: see row_stats in probabilistic_tpl.h); in vectors in the main loop
     * (chunks of long rows are whole groups of vectors, but a row's last), element by element after it.
     * above (when not NULL, with mx): += #{j : !(x_j <= xt)}, the rank count of evaluate's top-k */
    fl_vd lo = (fl_vd){0}, hi = (fl_vd){0}, dlo = (fl_vd){0}, dhi = (fl_vd){0};
    fl_vf e[FL__XU], vmx = (fl_vf){0} - INFINITY;
    fl_vfi vab = (fl_vfi){0};
    long i = 0;
    for (; i + FL__XU * FL_VF_N <= n; i += FL__XU * FL_VF_N) {
        for (long k = 0; k < FL__XU * FL_VF_N; k += 16) /* a line each (float data) */
            fl__prefetch_next((const char *)next + (i + k) * FL_ST_SIZE(st), far);
        FL__EACH(j, FL__XU) e[j] = fl__vf_load_st(x, i + j * FL_VF_N, st);
        if (mx) FL__EACH(j, FL__XU) vmx = FL__VMAX_IGNORE_NAN(vmx, e[j]);
        if (above) FL__EACH(j, FL__XU) vab -= ~(e[j] <= (fl_vf){0} + xt);
        FL__EACH(j, FL__XU) e[j] -= shift;
        if (diff)
            for (int j = 0; j < FL__XU; j += 4) fl__vf_add_widened(&dlo, &dhi, (e[j] + e[j + 1]) + (e[j + 2] + e[j + 3]));
        fl__vexp_nonpos_sum_f32_n(e, FL__XU);
        for (int j = 0; j < FL__XU; j += 4) fl__vf_add_widened(&lo, &hi, (e[j] + e[j + 1]) + (e[j + 2] + e[j + 3]));
    }
    const long i_main = i;
    for (; i + 4 * FL_VF_N <= n; i += 4 * FL_VF_N) { /* the same, 4 vectors at a time */
        FL__EACH(j, 4) e[j] = fl__vf_load_st(x, i + j * FL_VF_N, st) - shift;
        if (diff) fl__vf_add_widened(&dlo, &dhi, (e[0] + e[1]) + (e[2] + e[3]));
        fl__vexp_nonpos_sum_f32_n(e, 4);
        fl__vf_add_widened(&lo, &hi, (e[0] + e[1]) + (e[2] + e[3]));
    }
    if (i + 2 * FL_VF_N <= n) {
        fl_vf e2[2] = {fl__vf_load_st(x, i, st) - shift, fl__vf_load_st(x, i + FL_VF_N, st) - shift};
        if (diff) fl__vf_add_widened(&dlo, &dhi, e2[0] + e2[1]);
        fl__vexp_nonpos_sum_f32_n(e2, 2);
        fl__vf_add_widened(&lo, &hi, e2[0] + e2[1]);
        i += 2 * FL_VF_N;
    }
    if (i + FL_VF_N <= n) {
        const fl_vf e1 = fl__vf_load_st(x, i, st) - shift;
        if (diff) fl__vf_add_widened(&dlo, &dhi, e1);
        fl__vf_add_widened(&lo, &hi, fl__vexp_nonpos_sum_f32(e1));
        i += FL_VF_N;
    }
    double d = 0.0;
    if (diff) /* the tail (not its -inf padding) */
        for (long k = i; k < n; k++) d += (double)(fl_load_st(x, k, st) - shift);
    if (mx) { /* the lanes' max (and count), and the elements after the main loop one by one */
        float m = -INFINITY;
        long count = 0;
        for (int j = 0; j < FL_VF_N; j++) m = vmx[j] > m ? vmx[j] : m;
        for (int j = 0; j < FL_VF_N; j++) count += (long)vab[j];
        for (long k = i_main; k < n; k++) {
            const float v = fl_load_st(x, k, st);
            m = v > m ? v : m;
            count += !(v <= xt);
        }
        *mx = m;
        if (above) *above += count;
    }
    /* the tail's padding (-inf) must add exactly 0: the flushing exp */
    if (i < n) fl__vf_add_widened(&lo, &hi, fl__vexp_nonpos_f32(fl__vf_load_tail_st(x, i, n - i, st) - shift));
    lo += hi;
    double s = 0.0;
    for (int j = 0; j < FL_VD_N; j++) s += lo[j];
    if (diff) {
        dlo += dhi;
        for (int j = 0; j < FL_VD_N; j++) d += dlo[j];
        *diff += d;
    }
    return s;
}

FL_INLINE double fl_sum_exp_diff_shifted_f64(const double *x, long n, double shift, const double *next, double *diff,
                                              const int far)
{
    fl_vd acc = (fl_vd){0}, dacc = (fl_vd){0}, e[FL__XU];
    long i = 0;
    for (; i + FL__XU * FL_VD_N <= n; i += FL__XU * FL_VD_N) {
        FL__EACH(j, FL__XU) fl__prefetch_next(next + i + j * FL_VD_N, far);
        FL__EACH(j, FL__XU) e[j] = fl__vd_load(x + i + j * FL_VD_N) - shift;
        if (diff) FL__EACH(j, FL__XU) dacc += e[j];
        fl__vexp_nonpos_f64_n(e, FL__XU);
        for (int j = 0; j < FL__XU; j++) acc += e[j]; /* in order: the bits of one vector at a time */
    }
    for (; i + FL_VD_N <= n; i += FL_VD_N) {
        const fl_vd e1 = fl__vd_load(x + i) - shift;
        if (diff) dacc += e1;
        acc += fl__vexp_nonpos_f64(e1);
    }
    double d = 0.0;
    if (diff)
        for (long k = i; k < n; k++) d += x[k] - shift;
    if (i < n) acc += fl__vexp_nonpos_f64(fl__vd_load_tail(x + i, n - i) - shift);
    double s = 0.0;
    for (int j = 0; j < FL_VD_N; j++) s += acc[j];
    if (diff) {
        for (int j = 0; j < FL_VD_N; j++) d += dacc[j];
        *diff += d;
    }
    return s;
}
static inline double fl_sum_exp_shifted_f64(const double *x, long n, double shift, const double *next)
{
    return fl_sum_exp_diff_shifted_f64(x, n, shift, next, NULL, 0);
}

/* sum over x[0..n) of exp(x - shift), x <= shift, with each difference x - shift exact: d = x - shift rounded,
 * its error err by TwoSum, and exp(x - shift) = exp(d) (1 + err). For the sums of tiny cross-entropy losses,
 * where every term's exponent is far below 0 and a rounded difference would cost |d| 2^-53 of the term (and
 * float data's float difference |d| 2^-24); -inf elements add 0. */
static inline double fl_sum_exp_exact_f64(const double *x, long n, double shift)
{
    /* the terms added with TwoSum too (their rounding errors kept apart and added last): the sum of 50,000
     * terms stays within an ulp or two, not ~n ulps */
    fl_vd acc = (fl_vd){0}, comp = (fl_vd){0};
    long i = 0;
    for (; i + FL_VD_N <= n; i += FL_VD_N) {
        const fl_vd v = fl__vd_load(x + i), d = v - shift, back = d - v;
        const fl_vd err = (v - (d - back)) + ((0.0 - shift) - back);
        const fl_vd e = fl__vexp_nonpos_f64(d);
        const fl_vd term = fl__vd_blend(e == 0.0, (fl_vd){0}, FL__VDFMA(e, err, e));
        const fl_vd t = acc + term, tb = t - acc;
        comp += (acc - (t - tb)) + (term - tb);
        acc = t;
    }
    double s = 0.0, c = 0.0;
    for (int j = 0; j < FL_VD_N; j++) {
        const double t = s + acc[j], tb = t - s;
        c += (s - (t - tb)) + (acc[j] - tb) + comp[j];
        s = t;
    }
    for (; i < n; i++) {
        const double d = x[i] - shift, back = d - x[i], err = (x[i] - (d - back)) + (-shift - back);
        const double e = fl_exp_f64(d), term = e == 0.0 ? 0.0 : e + e * err;
        const double t = s + term, tb = t - s;
        c += (s - (t - tb)) + (term - tb);
        s = t;
    }
    return s + c;
}

/* Row stats of a tile of FL_TILE_F32 (FL_TILE_F64) short rows stored transposed, buf[c * lanes + r] for
 * class c of row r, one row per vector lane: m[r] = max (nan if the row has a nan), s[r] = sum_c
 * exp(buf - m[r]) in double (0 when m[r] = -inf: nothing to sum). n >= 1.
 * The class kernels ask for more (fl_tile_stats; constant flags, so that each use gets its own loop):
 *   tg (not NULL): tg[r] the target class of row r, or -1: s[r] then leaves the target's term out (the sum of
 *       the others, to full relative accuracy however small; the caller adds the target's term in double);
 *   want_diff: diff[r] = sum_c (buf - m[r]), in double (label smoothing's sum of the row's logits);
 *   want_rank: rank[r] = #{c : !(buf[c] <= buf[tg[r]])} (evaluate's top-k; a nan counts as above);
 *   tt (with tg): tt[r] = the target's own term exp(buf[tg[r]] - m[r]), for s = s_others + tt;
 *   ex (fl_tile_stats_ex, float rows; not NULL): the terms themselves, ex[c * lanes + r] = exp(buf - m[r]) (the
 *       vector exp of the softmax family: the same bits as fl_exp_shifted_scaled's), sh[r] their sum in double
 *       (each term widened: the others' sum sh - 1 of a max keeps its digits) and, with tg, xo[r] the target's
 *       logit (a cross-entropy Hessian's pass: ce_group_grad_hess). */
#define FL_TILE_F32 FL_VF_N
#define FL_TILE_F64 FL_VD_N
FL_INLINE void fl_tile_stats_ex_f32(const float *buf, long n, const int32_t *tg, const int want_diff,
                                    const int want_rank, double *m, double *s, double *diff, double *rank, double *tt,
                                    float *ex, double *sh, float *xo)
{
    /* two running maxima (maxps ignores a nan v; the flags catch it): a chain of compare-and-blend per class
     * was the latency of this loop */
    fl_vf mx = fl__vf_load(buf), mx1 = mx;
    fl_vfi nan = mx != mx;
    long c = 1;
    for (; c + 2 <= n; c += 2) {
        const fl_vf v0 = fl__vf_load(buf + c * FL_VF_N), v1 = fl__vf_load(buf + (c + 1) * FL_VF_N);
        mx = FL__VMAX_IGNORE_NAN(mx, v0);
        mx1 = FL__VMAX_IGNORE_NAN(mx1, v1);
        nan |= (v0 != v0) | (v1 != v1);
    }
    if (c < n) {
        const fl_vf v = fl__vf_load(buf + c * FL_VF_N);
        mx = FL__VMAX_IGNORE_NAN(mx, v);
        nan |= v != v;
    }
    mx = FL__VMAX_IGNORE_NAN(mx, mx1);
    fl_vfi tv = (fl_vfi){0} - 1, above = (fl_vfi){0};
    fl_vf xt = (fl_vf){0};
    if (tg) {
        int32_t tb[FL_VF_N];
        float xb[FL_VF_N];
        for (int r = 0; r < FL_VF_N; r++) tb[r] = tg[r];
        memcpy(&tv, tb, sizeof tv);
        if (want_rank) { /* (a vector load of lanes stored one by one waits for the stores: only when used) */
            for (int r = 0; r < FL_VF_N; r++) xb[r] = tg[r] >= 0 ? buf[tg[r] * FL_VF_N + r] : 0.0f;
            memcpy(&xt, xb, sizeof xt);
        }
    }
    fl_vd lo = (fl_vd){0}, hi = (fl_vd){0}, dlo = (fl_vd){0}, dhi = (fl_vd){0};
    fl_vf tsel = (fl_vf){0}; /* each row's target term exp(x_t - m), picked out as it goes by */
    fl_vf xsel = (fl_vf){0};                  /* (ex) and its logit */
    fl_vd slo = (fl_vd){0}, shi = (fl_vd){0}; /* (ex) the sum of the terms, each widened */
    /* K classes from c: FL__XU exps in lockstep; added two in float, then widened, as fl_sum_exp_shifted_f32 */
#define FL__TILE_STEP(K)                                                                                       \
    do {                                                                                                       \
        fl_vf e[FL__XU];                                                                                       \
        FL__EACH(j, K) {                                                                                       \
            const fl_vf v = fl__vf_load(buf + (c + j) * FL_VF_N);                                              \
            if (want_rank) above -= ~(v <= xt); /* -1 where not below or equal: a nan is above */             \
            if (ex && tg) xsel = fl__vf_blend(tv == (fl_vfi){0} + (int32_t)(c + j), v, xsel);                  \
            e[j] = v - mx;                                                                                     \
        }                                                                                                      \
        if (want_diff) {                                                                                       \
            if (K == 1) fl__vf_add_widened(&dlo, &dhi, e[0]);                                                  \
            else for (int j = 0; j < K; j += 2) fl__vf_add_widened(&dlo, &dhi, e[j] + e[j + 1]);              \
        }                                                                                                      \
        fl__vexp_nonpos_f32_n(e, K);                                                                           \
        if (ex) FL__EACH(j, K) {                                                                               \
            fl__vf_store(ex + (c + j) * FL_VF_N, e[j]);                                                        \
            fl__vf_add_widened(&slo, &shi, e[j]);                                                              \
        }                                                                                                      \
        if (tg) FL__EACH(j, K) {                                                                               \
            const fl_vfi is_t = tv == (fl_vfi){0} + (int32_t)(c + j);                                          \
            tsel = fl__vf_blend(is_t, e[j], tsel);                                                             \
            e[j] = fl__vf_blend(is_t, (fl_vf){0}, e[j]);                                                       \
        }                                                                                                      \
        if (K == 1) fl__vf_add_widened(&lo, &hi, e[0]);                                                        \
        else for (int j = 0; j < K; j += 2) fl__vf_add_widened(&lo, &hi, e[j] + e[j + 1]);                    \
    } while (0)
    c = 0;
    for (; c + FL__XU <= n; c += FL__XU) FL__TILE_STEP(FL__XU);
    for (; c + 2 <= n; c += 2) FL__TILE_STEP(2);
    if (c < n) FL__TILE_STEP(1);
#undef FL__TILE_STEP
    /* the edge rows in vector selects (a scalar loop with two branches per row cost a tenth of the time):
     * s = 0 where the row is all -inf (its exps are nan), nan where it has a nan; m = nan there too */
    const fl_vf one = (fl_vf){0} + 1.0f;
    const fl_vf f = fl__vf_blend(nan, (fl_vf){0} + NAN, fl__vf_blend(mx == -INFINITY, (fl_vf){0}, one));
    fl_vd flo = (fl_vd){0}, fhi = (fl_vd){0}, mlo = (fl_vd){0}, mhi = (fl_vd){0};
    fl__vf_add_widened(&flo, &fhi, f);
    fl__vf_add_widened(&mlo, &mhi, fl__vf_blend(nan, (fl_vf){0} + NAN, mx));
    fl__vd_store(m, mlo);
    fl__vd_store(m + FL_VD_N, mhi);
    fl__vd_store(s, fl__vd_blend(flo == 1.0, lo, flo));
    fl__vd_store(s + FL_VD_N, fl__vd_blend(fhi == 1.0, hi, fhi));
    if (want_diff) {
        fl__vd_store(diff, dlo);
        fl__vd_store(diff + FL_VD_N, dhi);
    }
    if (want_rank) {
        int32_t ab[FL_VF_N];
        memcpy(ab, &above, sizeof ab);
        for (int r = 0; r < FL_VF_N; r++) rank[r] = (double)ab[r];
    }
    if (tg) {
        fl_vd tlo = (fl_vd){0}, thi = (fl_vd){0};
        fl__vf_add_widened(&tlo, &thi, tsel);
        fl__vd_store(tt, tlo);
        fl__vd_store(tt + FL_VD_N, thi);
    }
    if (ex) {
        fl__vd_store(sh, slo);
        fl__vd_store(sh + FL_VD_N, shi);
        if (tg) fl__vf_store(xo, xsel);
    }
}
FL_INLINE void fl_tile_stats_f32(const float *buf, long n, const int32_t *tg, const int want_diff,
                                 const int want_rank, double *m, double *s, double *diff, double *rank, double *tt)
{
    fl_tile_stats_ex_f32(buf, n, tg, want_diff, want_rank, m, s, diff, rank, tt, NULL, NULL, NULL);
}
static inline void fl_tile_max_sumexp_f32(const float *buf, long n, double *m, double *s)
{
    fl_tile_stats_f32(buf, n, NULL, 0, 0, m, s, NULL, NULL, NULL);
}

#if defined(__AVX2__) && (FL_VF_N == 8 || FL_VF_N == 16)
/* An 8 x 8 float transpose in registers: o[j] lane i = r[i] lane j (24 shuffles); its own inverse. */
FL_INLINE void fl__transpose8_ps(const __m256 r[8], __m256 o[8])
{
    __m256 t[8], u[8];
    /* t: rows 2q, 2q+1 interleaved; u[4h + j], 128-bit lane L: rows 4h..4h+3 of column 4L + j */
    for (int q = 0; q < 4; q++) {
        t[2 * q] = _mm256_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm256_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    for (int h = 0; h < 2; h++) {
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) {
        o[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        o[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

/* 8 elements of a row from p + i as floats (half types widened: the bits of fl__vf_load_st) */
FL_INLINE __m256 fl__load8_st(const void *p, long i, const int st)
{
    if (st == FL_ST_F32) return _mm256_loadu_ps((const float *)p + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)p + i));
    if (st == FL_ST_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* AVX2 and AVX-512 (a tile of 16 rows as two of 8): the tile in chunks of 8 classes, the 8 rows' chunk loaded (a
 * masked load for the last chunk of float rows; the last chunk of half rows through a zeroed copy: AVX2 has no
 * 16-bit masked load) and transposed in registers, 24 shuffles for 64 elements; only the classes < n are
 * stored. Half rows are widened by the load. (An element-by-element copy was a third of a 1M x 10
 * cross-entropy's instructions.) */
FL_INLINE int fl__tile_load8_st(float *buf, const void *x, long stride, long n, long tr, const int st)
{
    enum { L = FL_VF_N };
    for (int h = 0; h < L / 8; h++) {
        long row[8];
        for (int i = 0; i < 8; i++) row[i] = (8 * h + i < tr ? 8 * h + i : 0) * stride;
        long c0 = 0;
        do { /* n >= 1 (a do loop: gcc's check of buf's use sees the first chunk stored) */
            const long w = n - c0 < 8 ? n - c0 : 8;
            const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 r[8], o[8];
            for (int i = 0; i < 8; i++) {
                const long at = row[i] + c0;
                if (w == 8) r[i] = fl__load8_st(x, at, st);
                else if (st == FL_ST_F32) r[i] = _mm256_maskload_ps((const float *)x + at, k);
                else {
                    uint16_t hw[8] = {0};
                    memcpy(hw, (const uint16_t *)x + at, (size_t)w * sizeof *hw);
                    r[i] = fl__load8_st(hw, 0, st);
                }
            }
            fl__transpose8_ps(r, o);
            for (int j = 0; j < 8; j++)
                if (j < w) _mm256_storeu_ps(buf + (c0 + j) * L + 8 * h, o[j]);
        } while ((c0 += 8) < n);
    }
    return 1;
}

/* The inverse: a tile buf[c * FL_VF_N + r] of n classes back to tr rows of n floats, row r at out + r * n, in
 * chunks of 8 classes by 8 rows transposed in registers. A row's last chunk is stored whole, its lanes past the
 * row's end into the first chunk of the rows after it, which are stored later (the chunks from the last to the
 * first, the rows in order); a store that would pass the tile's last row stores only its own row's part
 * (masked). n >= 1, 1 <= tr <= FL_VF_N. */
#define FL_TILE_STORE_F32 1
FL_INLINE void fl_tile_store_f32(float *out, const float *buf, long n, long tr)
{
    enum { L = FL_VF_N };
    for (long c0 = (n - 1) / 8 * 8; c0 >= 0; c0 -= 8)
        for (int h = 0; h < L / 8 && 8 * h < tr; h++) {
            __m256 r[8], o[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(buf + (c0 + (c0 + j < n ? j : 0)) * L + 8 * h);
            fl__transpose8_ps(r, o);
            for (int i = 8 * h; i < 8 * h + 8 && i < tr; i++) {
                if (n >= 8 ? i + 1 < tr || c0 + 8 <= n : i * n + 8 <= tr * n) {
                    _mm256_storeu_ps(out + i * n + c0, o[i - 8 * h]);
                } else {
                    const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - c0)),
                                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                    _mm256_maskstore_ps(out + i * n + c0, k, o[i - 8 * h]);
                }
            }
        }
}
#else
#define FL_TILE_STORE_F32 0
/* (no transposing store at this level: its callers take their row paths; this is never called) */
FL_INLINE void fl_tile_store_f32(float *out, const float *buf, long n, long tr)
{
    for (long i = 0; i < tr; i++)
        for (long c = 0; c < n; c++) out[i * n + c] = buf[c * FL_VF_N + i];
}
#endif

/* The tile of tr (<= FL_TILE_F32) rows of n classes at x (row r at x + r * stride; the rows past tr repeat
 * row 0) transposed into buf[c * FL_TILE_F32 + r]. With AVX-512 and n <= 16: 16 masked row loads and a 16 x 16
 * in-register transpose (64 shuffles) instead of a scalar load and store per element (the larger part of a
 * 1M x 10 cross-entropy); AVX2, and AVX-512 rows of 17-32 classes: fl__tile_load8_st. Returns 0 where it
 * does not apply (the caller copies element by element). */
static inline int fl_tile_load_f32(float *buf, const float *x, long stride, long n, long tr)
{
#if defined(__AVX2__) && FL_VF_N == 8
    return fl__tile_load8_st(buf, x, stride, n, tr, FL_ST_F32);
#elif defined(__AVX512F__) && FL_VF_N == 16
    if (n > 16) return fl__tile_load8_st(buf, x, stride, n, tr, FL_ST_F32);
    const __mmask16 k = (__mmask16)((1u << n) - 1u);
    __m512 r[16], u[16], v[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_maskz_loadu_ps(k, x + (i < tr ? i : 0) * stride);
    /* 32-bit, then 64-bit interleaves: u[4q + j], 128-bit lane L = rows 4q..4q+3 of class 4L + j */
    for (int q = 0; q < 4; q++) {
        const __m512 t0 = _mm512_unpacklo_ps(r[4 * q], r[4 * q + 1]), t1 = _mm512_unpackhi_ps(r[4 * q], r[4 * q + 1]);
        const __m512 t2 = _mm512_unpacklo_ps(r[4 * q + 2], r[4 * q + 3]), t3 = _mm512_unpackhi_ps(r[4 * q + 2], r[4 * q + 3]);
        u[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
    }
    /* 128-bit lanes: v[j] = rows 0-7 of classes j, 8 + j; v[4 + j]: 4 + j, 12 + j; v[8 + ...]: rows 8-15 */
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++) {
            v[8 * h + j] = _mm512_shuffle_f32x4(u[8 * h + j], u[8 * h + 4 + j], 0x88);
            v[8 * h + 4 + j] = _mm512_shuffle_f32x4(u[8 * h + j], u[8 * h + 4 + j], 0xdd);
        }
    for (int j = 0; j < 4; j++) {
        _mm512_storeu_ps(buf + j * 16, _mm512_shuffle_f32x4(v[j], v[8 + j], 0x88));
        if (8 + j < n) _mm512_storeu_ps(buf + (8 + j) * 16, _mm512_shuffle_f32x4(v[j], v[8 + j], 0xdd));
        if (4 + j < n) _mm512_storeu_ps(buf + (4 + j) * 16, _mm512_shuffle_f32x4(v[4 + j], v[12 + j], 0x88));
        if (12 + j < n) _mm512_storeu_ps(buf + (12 + j) * 16, _mm512_shuffle_f32x4(v[4 + j], v[12 + j], 0xdd));
    }
    return 1;
#else
    (void)buf, (void)x, (void)stride, (void)n, (void)tr;
    return 0;
#endif
}
/* As fl_tile_load_f32 for double rows (FL_TILE_F64 lanes): AVX2, chunks of 4 classes, 4 x 4 transposes. */
static inline int fl_tile_load_f64(double *buf, const double *x, long stride, long n, long tr)
{
#if defined(__AVX2__) && FL_VD_N == 4
    long c0 = 0;
    do { /* n >= 1, as fl__tile_load8_st */
        const long w = n - c0 < 4 ? n - c0 : 4;
        const __m256i k = _mm256_cmpgt_epi64(_mm256_set1_epi64x(w), _mm256_setr_epi64x(0, 1, 2, 3));
        __m256d r[4];
        for (int i = 0; i < 4; i++) {
            const double *p = x + (i < tr ? i : 0) * stride + c0;
            r[i] = w == 4 ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, k);
        }
        /* t[0] = rows 0, 1 of classes 0 | 2; t[1]: of 1 | 3; t[2], t[3]: rows 2, 3 */
        const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
        const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
        _mm256_storeu_pd(buf + c0 * 4, _mm256_permute2f128_pd(t0, t2, 0x20));
        if (w > 1) _mm256_storeu_pd(buf + (c0 + 1) * 4, _mm256_permute2f128_pd(t1, t3, 0x20));
        if (w > 2) _mm256_storeu_pd(buf + (c0 + 2) * 4, _mm256_permute2f128_pd(t0, t2, 0x31));
        if (w > 3) _mm256_storeu_pd(buf + (c0 + 3) * 4, _mm256_permute2f128_pd(t1, t3, 0x31));
    } while ((c0 += 4) < n);
    return 1;
#else
    (void)buf, (void)x, (void)stride, (void)n, (void)tr;
    return 0;
#endif
}

FL_INLINE void fl_tile_stats_f64(const double *buf, long n, const int32_t *tg, const int want_diff,
                                 const int want_rank, double *m, double *s, double *diff, double *rank, double *tt)
{
    fl_vd mx = fl__vd_load(buf);
    fl_vdi nan = mx != mx;
    for (long c = 1; c < n; c++) {
        const fl_vd v = fl__vd_load(buf + c * FL_VD_N);
        mx = fl__vd_blend(v > mx, v, mx);
        nan |= v != v;
    }
    fl_vdi tv = (fl_vdi){0} - 1, above = (fl_vdi){0};
    fl_vd xt = (fl_vd){0};
    if (tg)
        for (int r = 0; r < FL_VD_N; r++) {
            tv[r] = tg[r];
            xt[r] = tg[r] >= 0 ? buf[tg[r] * FL_VD_N + r] : 0.0;
        }
    fl_vd acc = (fl_vd){0}, dacc = (fl_vd){0}, tsel = (fl_vd){0};
#define FL__TILE_STEP64(K)                                                                                     \
    do {                                                                                                       \
        fl_vd e[4];                                                                                            \
        FL__EACH(j, K) {                                                                                       \
            const fl_vd v = fl__vd_load(buf + (c + j) * FL_VD_N);                                              \
            if (want_rank) above -= ~(v <= xt);                                                                \
            e[j] = v - mx;                                                                                     \
            if (want_diff) dacc += e[j];                                                                       \
        }                                                                                                      \
        fl__vexp_nonpos_f64_n(e, K);                                                                           \
        FL__EACH(j, K) {                                                                                       \
            const fl_vdi is_t = tv == (fl_vdi){0} + (c + j);                                                   \
            if (tg) tsel = fl__vd_blend(is_t, e[j], tsel);                                                     \
            acc += tg ? fl__vd_blend(is_t, (fl_vd){0}, e[j]) : e[j];                                           \
        }                                                                                                      \
    } while (0)
    long c = 0;
    for (; c + 4 <= n; c += 4) FL__TILE_STEP64(4); /* four exps in lockstep, added in order */
    for (; c < n; c++) FL__TILE_STEP64(1);
#undef FL__TILE_STEP64
    for (int r = 0; r < FL_VD_N; r++) {
        m[r] = nan[r] ? (double)NAN : mx[r];
        s[r] = nan[r] ? (double)NAN : mx[r] == -INFINITY ? 0.0 : acc[r];
        if (want_diff) diff[r] = dacc[r];
        if (want_rank) rank[r] = (double)above[r];
        if (tg) tt[r] = tsel[r];
    }
}
static inline void fl_tile_max_sumexp_f64(const double *buf, long n, double *m, double *s)
{
    fl_tile_stats_f64(buf, n, NULL, 0, 0, m, s, NULL, NULL, NULL);
}
/* (double rows have no term outputs: ce_group_grad_hess is a float path) */
static inline void fl_tile_stats_ex_f64(const double *buf, long n, const int32_t *tg, int want_diff, int want_rank,
                                        double *m, double *s, double *diff, double *rank, double *tt, float *ex,
                                        double *sh, float *xo)
{
    (void)ex, (void)sh, (void)xo;
    fl_tile_stats_f64(buf, n, tg, want_diff, want_rank, m, s, diff, rank, tt);
}

/* out[j] = scale * exp(x[j] - shift) for x[j] <= shift (softmax rows, cross-entropy gradients), out of storage
 * kind ost: float, or a half type (each value rounded as fl_store_row_st rounds it) */
FL_INLINE void fl_exp_shifted_scaled_to_st(const void *x, long n, float shift, float scale, void *out, const int st,
                                           const int ost)
{
    if (n < FL_VF_N) { /* a short row: a plain loop (vectorised with a masked tail) beats the padded tail */
        for (long j = 0; j < n; j++) fl_store_st(out, j, scale * fl_exp_f32(fl_load_st(x, j, st) - shift), ost);
        return;
    }
    long i = 0;
    for (; i + FL__XU * FL_VF_N <= n; i += FL__XU * FL_VF_N) {
        fl_vf e[FL__XU];
        FL__EACH(j, FL__XU) e[j] = fl__vf_load_st(x, i + j * FL_VF_N, st) - shift;
        fl__vexp_nonpos_f32_n(e, FL__XU);
        FL__EACH(j, FL__XU) fl__vf_store_st(out, i + j * FL_VF_N, scale * e[j], ost);
    }
    for (; i + FL_VF_N <= n; i += FL_VF_N) fl__vf_store_st(out, i, scale * fl__vexp_nonpos_f32(fl__vf_load_st(x, i, st) - shift), ost);
    if (i < n) {
        const fl_vf v = scale * fl__vexp_nonpos_f32(fl__vf_load_tail_st(x, i, n - i, st) - shift);
        if (ost == FL_ST_F32) fl__vf_store_tail((float *)out + i, v, n - i);
        else fl__vf_store_tail_st(out, i, v, n - i, ost);
    }
}
FL_INLINE void fl_exp_shifted_scaled_st(const void *x, long n, float shift, float scale, float *out, const int st)
{
    fl_exp_shifted_scaled_to_st(x, n, shift, scale, out, st, FL_ST_F32);
}
/* element t of that row (n >= FL_VF_N), its bits there: the vector exp's lane, which depends on the lane alone */
FL_INLINE float fl_exp_shifted_scaled_at_st(const void *x, long t, float shift, float scale, const int st)
{
    return (scale * fl__vexp_nonpos_f32(fl__vf_load_tail_st(x, t, 1, st) - shift))[0];
}

/* The same with non-temporal stores, for outputs far larger than the caches (a 4096 x 32000 gradient): a plain
 * store first reads the line it writes (read-for-ownership), doubling the memory traffic of the write pass.
 * AVX-512 only (elsewhere the plain function); the stores are fenced before returning. */
FL_INLINE void fl_exp_shifted_scaled_nt_st(const void *x, long n, float shift, float scale, float *out,
                                            const int st)
{
#if defined(__AVX512F__) && FL_VF_N == 16
    if (n < 2 * FL_VF_N) { /* short rows: plain stores (and the same arithmetic as the plain function) */
        fl_exp_shifted_scaled_st(x, n, shift, scale, out, st);
        return;
    }
    /* up to the first 64-byte boundary, then whole lines, then the rest: each with the vector exp, as the
     * plain function does (same bits) */
    const long head = (long)(((64 - ((uintptr_t)out & 63)) & 63) / sizeof(float));
    if (head) fl__vf_store_tail(out, scale * fl__vexp_nonpos_f32(fl__vf_load_tail_st(x, 0, head, st) - shift), head);
    long i = head;
    for (; i + FL__XU * FL_VF_N <= n; i += FL__XU * FL_VF_N) {
        fl_vf e[FL__XU];
        FL__EACH(j, FL__XU) e[j] = fl__vf_load_st(x, i + j * FL_VF_N, st) - shift;
        fl__vexp_nonpos_f32_n(e, FL__XU);
        FL__EACH(j, FL__XU) _mm512_stream_ps(out + i + j * FL_VF_N, (__m512)(scale * e[j]));
    }
    for (; i + FL_VF_N <= n; i += FL_VF_N)
        _mm512_stream_ps(out + i, (__m512)(scale * fl__vexp_nonpos_f32(fl__vf_load_st(x, i, st) - shift)));
    if (i < n) fl__vf_store_tail(out + i, scale * fl__vexp_nonpos_f32(fl__vf_load_tail_st(x, i, n - i, st) - shift), n - i);
    _mm_sfence();
#else
    fl_exp_shifted_scaled_st(x, n, shift, scale, out, st);
#endif
}

static inline void fl_exp_shifted_scaled_f64(const double *x, long n, double shift, double scale, double *out)
{
    if (n < FL_VD_N) {
        for (long j = 0; j < n; j++) out[j] = scale * fl_exp_f64(x[j] - shift);
        return;
    }
    long i = 0;
    for (; i + FL__XU * FL_VD_N <= n; i += FL__XU * FL_VD_N) {
        fl_vd e[FL__XU];
        FL__EACH(j, FL__XU) e[j] = fl__vd_load(x + i + j * FL_VD_N) - shift;
        fl__vexp_nonpos_f64_n(e, FL__XU);
        FL__EACH(j, FL__XU) fl__vd_store(out + i + j * FL_VD_N, scale * e[j]);
    }
    for (; i + FL_VD_N <= n; i += FL_VD_N) fl__vd_store(out + i, scale * fl__vexp_nonpos_f64(fl__vd_load(x + i) - shift));
    if (i < n) fl__vd_store_tail(out + i, scale * fl__vexp_nonpos_f64(fl__vd_load_tail(x + i, n - i) - shift), n - i);
}

#else /* no vector extensions: plain loops */

static inline int fl_tile_load_f32(float *buf, const float *x, long stride, long n, long tr)
{
    (void)buf, (void)x, (void)stride, (void)n, (void)tr;
    return 0;
}
static inline int fl_tile_load_f64(double *buf, const double *x, long stride, long n, long tr)
{
    (void)buf, (void)x, (void)stride, (void)n, (void)tr;
    return 0;
}

static inline double fl_sum_exp_exact_f64(const double *x, long n, double shift)
{
    double s = 0.0, c = 0.0;
    for (long i = 0; i < n; i++) {
        const double d = x[i] - shift, back = d - x[i], err = (x[i] - (d - back)) + (-shift - back);
        const double e = fl_exp_f64(d), term = e == 0.0 ? 0.0 : e + e * err;
        const double t = s + term, tb = t - s;
        c += (s - (t - tb)) + (term - tb);
        s = t;
    }
    return s + c;
}

#define FL_TILE_F32 8
#define FL_TILE_F64 8
#define FL__TILE_STATS(T, EXP)                                                                    \
    for (int r = 0; r < 8; r++) {                                                                 \
        T mx = buf[r];                                                                            \
        int nan = mx != mx;                                                                       \
        for (long c = 1; c < n; c++) { T v = buf[c * 8 + r]; mx = v > mx ? v : mx; nan |= v != v; } \
        const long t = tg ? tg[r] : -1;                                                           \
        const T xt = t >= 0 ? buf[t * 8 + r] : 0;                                                 \
        double sr = 0.0, dr = 0.0, ab = 0.0;                                                      \
        for (long c = 0; c < n; c++) {                                                            \
            const T v = buf[c * 8 + r];                                                           \
            if (c == t) tt[r] = EXP(v - mx);                                                      \
            sr += c == t ? 0.0 : EXP(v - mx);                                                     \
            dr += (double)(v - mx);                                                               \
            ab += !(v <= xt);                                                                     \
        }                                                                                         \
        m[r] = nan ? (double)NAN : (double)mx;                                                    \
        s[r] = nan ? (double)NAN : mx == -INFINITY ? 0.0 : sr;                                    \
        if (want_diff) diff[r] = dr;                                                              \
        if (want_rank) rank[r] = ab;                                                              \
    }
static inline void fl_tile_stats_f32(const float *buf, long n, const int32_t *tg, int want_diff, int want_rank,
                                     double *m, double *s, double *diff, double *rank, double *tt)
{
    FL__TILE_STATS(float, fl_exp_f32)
}
static inline void fl_tile_stats_f64(const double *buf, long n, const int32_t *tg, int want_diff, int want_rank,
                                     double *m, double *s, double *diff, double *rank, double *tt)
{
    FL__TILE_STATS(double, fl_exp_f64)
}
static inline void fl_tile_max_sumexp_f32(const float *buf, long n, double *m, double *s)
{
    fl_tile_stats_f32(buf, n, NULL, 0, 0, m, s, NULL, NULL, NULL);
}
static inline void fl_tile_stats_ex_f32(const float *buf, long n, const int32_t *tg, int want_diff, int want_rank,
                                        double *m, double *s, double *diff, double *rank, double *tt, float *ex,
                                        double *sh, float *xo)
{
    (void)ex, (void)sh, (void)xo; /* (never asked here: ce_group_grad_hess needs FL_TILE_STORE_F32) */
    fl_tile_stats_f32(buf, n, tg, want_diff, want_rank, m, s, diff, rank, tt);
}
static inline void fl_tile_max_sumexp_f64(const double *buf, long n, double *m, double *s)
{
    fl_tile_stats_f64(buf, n, NULL, 0, 0, m, s, NULL, NULL, NULL);
}
/* (double rows have no term outputs: ce_group_grad_hess is a float path) */
static inline void fl_tile_stats_ex_f64(const double *buf, long n, const int32_t *tg, int want_diff, int want_rank,
                                        double *m, double *s, double *diff, double *rank, double *tt, float *ex,
                                        double *sh, float *xo)
{
    (void)ex, (void)sh, (void)xo;
    fl_tile_stats_f64(buf, n, tg, want_diff, want_rank, m, s, diff, rank, tt);
}

FL_INLINE float fl_max_st(const void *x, long n, const int st)
{
    float m = -INFINITY;
    int nan = 0;
    for (long i = 0; i < n; i++) { const float v = fl_load_st(x, i, st); m = v > m ? v : m; nan |= v != v; }
    return nan ? NAN : m;
}
static inline double fl_max_f64(const double *x, long n)
{
    double m = -INFINITY;
    int nan = 0;
    for (long i = 0; i < n; i++) { m = x[i] > m ? x[i] : m; nan |= x[i] != x[i]; }
    return nan ? NAN : m;
}
FL_INLINE float fl_max_count_st(const void *x, long n, float xt, long *above, const int st)
{
    float m = -INFINITY;
    int nan = 0;
    for (long i = 0; i < n; i++) {
        const float v = fl_load_st(x, i, st);
        m = v > m ? v : m;
        nan |= v != v;
        *above += !(v <= xt);
    }
    return nan ? NAN : m;
}
static inline double fl_max_count_f64(const double *x, long n, double xt, long *above)
{
    double m = -INFINITY;
    int nan = 0;
    for (long i = 0; i < n; i++) { m = x[i] > m ? x[i] : m; nan |= x[i] != x[i]; *above += !(x[i] <= xt); }
    return nan ? NAN : m;
}
FL_INLINE double fl_sum_exp_shifted_st(const void *x, long n, float shift, const void *next, const int st,
                                       double *diff, float *mx, float xt, long *above, const int far)
{
    (void)next, (void)far;
    double s = 0.0, d = 0.0;
    float m = -INFINITY;
    long count = 0;
    for (long i = 0; i < n; i++) {
        const float v = fl_load_st(x, i, st), e = v - shift;
        s += fl_exp_f32(e);
        d += (double)e;
        m = v > m ? v : m;
        count += !(v <= xt);
    }
    if (diff) *diff += d;
    if (mx) *mx = m;
    if (above) *above += count;
    return s;
}
static inline double fl_sum_exp_diff_shifted_f64(const double *x, long n, double shift, const double *next,
                                                 double *diff, const int far)
{
    (void)next, (void)far;
    double s = 0.0, d = 0.0;
    for (long i = 0; i < n; i++) {
        s += fl_exp_f64(x[i] - shift);
        d += x[i] - shift;
    }
    if (diff) *diff += d;
    return s;
}
static inline double fl_sum_exp_shifted_f64(const double *x, long n, double shift, const double *next)
{
    return fl_sum_exp_diff_shifted_f64(x, n, shift, next, NULL, 0);
}
FL_INLINE void fl_exp_shifted_scaled_to_st(const void *x, long n, float shift, float scale, void *out, const int st,
                                           const int ost)
{
    for (long i = 0; i < n; i++) fl_store_st(out, i, scale * fl_exp_f32(fl_load_st(x, i, st) - shift), ost);
}
FL_INLINE void fl_exp_shifted_scaled_st(const void *x, long n, float shift, float scale, float *out, const int st)
{
    fl_exp_shifted_scaled_to_st(x, n, shift, scale, out, st, FL_ST_F32);
}
FL_INLINE float fl_exp_shifted_scaled_at_st(const void *x, long t, float shift, float scale, const int st)
{
    return scale * fl_exp_f32(fl_load_st(x, t, st) - shift);
}
static inline void fl_exp_shifted_scaled_f64(const double *x, long n, double shift, double scale, double *out)
{
    for (long i = 0; i < n; i++) out[i] = scale * fl_exp_f64(x[i] - shift);
}
FL_INLINE void fl_exp_shifted_scaled_nt_st(const void *x, long n, float shift, float scale, float *out,
                                            const int st)
{
    fl_exp_shifted_scaled_st(x, n, shift, scale, out, st);
}
#endif

/* out[0 .. n) (storage kind st) = v, rounded as fl_store_row_st rounds it */
FL_INLINE void fl_fill_st(void *out, long n, float v, const int st)
{
    long i = 0;
#if defined(FL_VF_N)
    for (; i + FL_VF_N <= n; i += FL_VF_N) fl__vf_store_st(out, i, (fl_vf){0} + v, st);
#endif
    for (; i < n; i++) fl_store_st(out, i, v, st);
}

/* out[0 .. n) (storage kind st) = src[0 .. n), rounded: a float gradient computed in cache, stored as half */
FL_INLINE void fl_store_row_st(void *out, const float *src, long n, const int st)
{
    long i = 0;
#if defined(FL_VF_N)
    for (; i + FL_VF_N <= n; i += FL_VF_N) fl__vf_store_st(out, i, fl__vf_load(src + i), st);
#endif
    for (; i < n; i++) fl_store_st(out, i, src[i], st);
}

/* The float row primitives by storage kind, for the templates (probabilistic.c, evaluate.c) */
#define FL__ROW_PRIMITIVES(SUFFIX, ST)                                                                        \
    static inline float fl_max_##SUFFIX(const void *x, long n) { return fl_max_st(x, n, ST); }              \
    static inline float fl_max_count_##SUFFIX(const void *x, long n, float xt, long *above)                  \
    {                                                                                                        \
        return fl_max_count_st(x, n, xt, above, ST);                                                         \
    }                                                                                                        \
    static inline double fl_sum_exp_shifted_##SUFFIX(const void *x, long n, float shift, const void *next)  \
    {                                                                                                        \
        return fl_sum_exp_shifted_st(x, n, shift, next, ST, NULL, NULL, 0.0f, NULL, 0);                      \
    }                                                                                                        \
    static inline double fl_sum_exp_diff_shifted_##SUFFIX(const void *x, long n, float shift, const void *next, \
                                                          double *diff, int far)                             \
    {                                                                                                        \
        return fl_sum_exp_shifted_st(x, n, shift, next, ST, diff, NULL, 0.0f, NULL, far);                    \
    }                                                                                                        \
    static inline double fl_sum_exp_max_shifted_##SUFFIX(const void *x, long n, float shift, const void *next,  \
                                                         double *diff, float *mx, float xt, long *above,     \
                                                         int far)                                            \
    {                                                                                                        \
        return fl_sum_exp_shifted_st(x, n, shift, next, ST, diff, mx, xt, above, far);                       \
    }                                                                                                        \
    static inline void fl_exp_shifted_scaled_##SUFFIX(const void *x, long n, float shift, float scale,       \
                                                      float *out)                                            \
    {                                                                                                        \
        fl_exp_shifted_scaled_st(x, n, shift, scale, out, ST);                                               \
    }                                                                                                        \
    static inline void fl_exp_shifted_scaled_nt_##SUFFIX(const void *x, long n, float shift, float scale,    \
                                                         float *out)                                         \
    {                                                                                                        \
        fl_exp_shifted_scaled_nt_st(x, n, shift, scale, out, ST);                                            \
    }
FL__ROW_PRIMITIVES(f32, FL_ST_F32)
FL__ROW_PRIMITIVES(f16, FL_ST_F16)
FL__ROW_PRIMITIVES(bf16, FL_ST_BF16)
#undef FL__ROW_PRIMITIVES
/* double rows: their max and sum of exps in two passes (row_stats takes the fused pass for float data only) */
static inline double fl_sum_exp_max_shifted_f64(const double *x, long n, double shift, const double *next,
                                                double *diff, double *mx, double xt, long *above, int far)
{
    long count = 0;
    *mx = above ? fl_max_count_f64(x, n, xt, &count) : fl_max_f64(x, n);
    if (above) *above += count;
    return fl_sum_exp_diff_shifted_f64(x, n, shift, next, diff, far);
}
/* double rows have no streaming variant; half tiles are transposed in registers with AVX2 and AVX-512
 * (fl__tile_load8_st), elsewhere the caller copies element by element */
#define fl_exp_shifted_scaled_nt_f64 fl_exp_shifted_scaled_f64
FL_INLINE int fl__tile_load_half(float *buf, const uint16_t *x, long stride, long n, long tr, const int st)
{
#if defined(__AVX2__) && (FL_VF_N == 8 || FL_VF_N == 16)
    return fl__tile_load8_st(buf, x, stride, n, tr, st);
#else
    (void)buf, (void)x, (void)stride, (void)n, (void)tr, (void)st;
    return 0;
#endif
}
static inline int fl_tile_load_f16(float *buf, const uint16_t *x, long stride, long n, long tr)
{
    return fl__tile_load_half(buf, x, stride, n, tr, FL_ST_F16);
}
static inline int fl_tile_load_bf16(float *buf, const uint16_t *x, long stride, long n, long tr)
{
    return fl__tile_load_half(buf, x, stride, n, tr, FL_ST_BF16);
}

#endif /* FASTLOSS_VMATH_H */
