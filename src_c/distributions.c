/* distributions.c -- entropy, categorical_cross_entropy and kl_divergence over rows of probabilities, and the
 * element-wise binary_cross_entropy_with_logits and kl_div; compiled once per SIMD level, the kernels written
 * once in distributions_tpl.h. The per-element math below is dtype-free: every element is widened to double,
 * computed in double and rounded once, so a float32 result is as good as float32 can hold. */
#include <float.h>

#include "common.h"
#include "vmath.h"

/* ---- the term of one entry (p, q) of a row, by kind ------------------------------------------------------ */
enum { FL_DIST_ENTROPY = 0, FL_DIST_CROSS_ENTROPY = 1, FL_DIST_KL = 2 };
#define FL_DIST_SHORT_ROWS 32      /* rows up to this long take the flat path (float: FMA levels) */
/* and float rows up to this long whose vectors do not fill the row path's groups: the row path takes its last
 * vectors one at a time (see fl_dist_row_float_vec); AVX2, 2M float32 in rows of 100, kl + entropy +
 * cross-entropy, 1 thread: 23% faster flat; rows of 128 (whole groups) 11% slower flat. AVX-512's tile load
 * takes rows of up to 16 classes (the flat path sums longer ones a row at a time): not there. */
#if defined(FL_VF_N) && FL_VF_N == 8
#define FL_DIST_SHORT_ROWS_F 128
#else
#define FL_DIST_SHORT_ROWS_F FL_DIST_SHORT_ROWS
#endif
#define FL_DIST_FLAT_ROWS 1024     /* elements (>= FL_DIST_SHORT_ROWS_F) of a flat span, and the most rows in one */
#define FL_DIST_CHUNK 512  /* elements of a float row widened to double at a time */
#define FL_ONES_8 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0
#define FL_ONES_64 FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8, FL_ONES_8
static const double fl_dist_ones[FL_DIST_CHUNK] = {FL_ONES_64, FL_ONES_64, FL_ONES_64, FL_ONES_64,
                                                   FL_ONES_64, FL_ONES_64, FL_ONES_64, FL_ONES_64};

/* Edge cases, as scipy.special (entr, xlogy, rel_entr): nan in gives nan; 0 log 0 = 0 (and 0 log q = 0 for any
 * q >= 0); q = 0 < p gives +inf. Negative entries are reported by the row loop, their term is not used. */
FL_INLINE double fl_dist_term(int kind, double p, double q)
{
    /* every case computed, then selected: no branch, so the row loop vectorises */
    const double zero_p = q != q ? q : 0.0;                                 /* 0 log q = 0, but nan stays nan */
    if (kind == FL_DIST_ENTROPY) {                                          /* entr(p) = -p log p */
        const double t = -p * fl_log_f64(p);
        return p == 0.0 ? 0.0 : t;
    }
    if (kind == FL_DIST_CROSS_ENTROPY) {                                    /* -xlogy(p, q): q = 0 < p: +inf */
        const double t = -p * fl_log_f64(q);
        return p == 0.0 ? zero_p : t;
    }
    /* rel_entr(p, q) = p log(p / q); the ratio in double cannot overflow for float data; q = 0 < p: +inf */
    const double t = p * fl_log_f64(p / q);
    const double r = q == 0.0 ? (p == p ? INFINITY : p) : t;
    return p == 0.0 ? zero_p : r;
}

/* Which pass a kl row tries first (fl_dist_row_kl), left by the thread's last row: a cost hint only, never a
 * result (thread-local: read and written once a block) */
static _Thread_local int fl_dist_hint;

/* fl_dist_term for float data (p and q float values, widened): kl's log(p / q) from a ratio rounded to float,
 * r = float(p / q), whose residual e = p - r q is exact in double (r q: 48 bits, within 2^-24 of p), so
 *   p log(p / q) = p log r + p log1p(e / (p - e)) = p log r + e + e^2 / (2 p) + O(2^-72 p),
 * each term within ~2 2^-53 of its own size (log r near 0 to its relative accuracy) however the row's terms
 * cancel. p log(p / q) in double instead loses p / q's rounding, 2^-53 of p, a term: with q close to p (terms
 * of 1e-6 p summing to 1e-12), 1e-5 of the row's KL; the double terms of the vector levels are the same form.
 * Where r is not a normal float (the ratio out of float's range, inf, nan), p log(p / q) as for float64 data. */
FL_INLINE double fl_dist_term_fdata(int kind, double p, double q)
{
    if (kind != FL_DIST_KL) return fl_dist_term(kind, p, q);
    const double ratio = p / q;
    /* clamped: no conversion out of float's range (a negative p, reported, still computes its term) */
    const double r = (double)(float)fmax(fmin(ratio, (double)FLT_MAX), -(double)FLT_MAX);
    const int ok = r >= (double)FLT_MIN && r < (double)FLT_MAX;
    const double e = ok ? p - r * q : 0.0;
    const double t = p * fl_log_f64(ok ? r : ratio) + (ok ? e + 0.5 * e * (e / p) : 0.0);
    const double zero_p = q != q ? q : 0.0;
    const double tq = q == 0.0 ? (p == p ? INFINITY : p) : t;
    return p == 0.0 ? zero_p : tq;
}

/* Short rows of float64 data, contiguous (rows * n <= FL_DIST_FLAT_ROWS elements): the terms of the whole span
 * in one loop, which gcc vectorises (a row of 10 was the scalar remainder of the row loop's lanes: 5 ns an
 * element), then each row summed in FL_LANES lanes and fl_lane_sum, as the row path sums it: the same terms
 * (fl_dist_term), the same order, the same bits. A span with a negative entry is left to the row path (which
 * reports it): done[] all 0. */
FL_INLINE void fl_dist_rows_flat_f64(const int kind, const double *FL_RESTRICT p, const double *FL_RESTRICT q,
                                     fl_index rows, fl_index n, double *out, unsigned char *done)
{
    double tb[FL_DIST_FLAT_ROWS];
    const fl_index len = rows * n;
    int neg = 0;
    for (fl_index j = 0; j < len; j++) {
        const double pj = p[j], qj = kind == FL_DIST_ENTROPY ? 0.0 : q[j];
        neg |= (pj < 0.0) | (qj < 0.0);
        tb[j] = fl_dist_term(kind, pj, qj);
    }
    for (fl_index r = 0; r < rows; r++) {
        done[r] = !neg;
        double acc[FL_LANES] = {0};
        for (fl_index j = 0; j < n; j++) acc[j % FL_LANES] += tb[r * n + j];
        out[r] = fl_lane_sum(acc);
    }
}

/* ---- the measures of float rows, in float vectors --------------------------------------------------------
 * The double path above widens every element and takes fdlibm's log (and, for kl, two divisions): ~10 ns an
 * element. Here each term is computed in float vectors, within ~2 ulp of itself, and summed in double:
 *   entropy  -p log p;   cross-entropy  -p log q;
 *   kl       r = p / q rounded, e = p - r q exactly (one FMA), so p log(p / q) = p log r + e (1 + O(2^-24)).
 * What the float path cannot do goes the double way, a whole row (or span of short rows) at a time: a log
 * argument (p where p != 0, q, kl's r where p != 0) outside float's normal range (zeros of q, negatives to
 * report, subnormals, inf), a nan q, a q above 1 and, for entropy and cross-entropy, a p above 1: then a term
 * can be negative and the row's terms cancel (kl: p / q could underflow to 0 where p > 0). Those checks are a
 * running minimum and maximum of the arguments (and a running sum of q, nan if one is): a few operations a
 * vector instead of a dozen compares (kl: see fl__kl_ratio). A row whose terms sum to inf or nan goes the
 * double way too (a nan p: nan either way). kl's terms do cancel (p ~ q): its row's error is at most ~2 ulp of
 * sum |term|, and where that is more than 4 times |sum term| the row is done again in double terms
 * (fl_dist_row_kl_f64, fl_dist_rows_flat_vec). p = 0
 * gives a term of 0 (0 log 0 = 0, as entr / xlogy / rel_entr). Levels with FMA only: without it kl's residual
 * is not exact (the scalar level takes the double path). */
#if defined(FL_VF_N) && defined(__FMA__)
#if defined(__AVX512F__) && FL_VF_N == 16
/* With AVX-512, p = 0 is a mask register and the selects on it single instructions (gcc made two or three of
 * each from the generic vector code) */
typedef __mmask16 fl__dist_mask;
#define FL__DIST_ZERO(pv) _mm512_cmp_ps_mask((__m512)(pv), _mm512_setzero_ps(), _CMP_EQ_OQ)
#define FL__DIST_SEL(m, a, b) ((fl_vf)_mm512_mask_blend_ps((m), (__m512)(b), (__m512)(a)))         /* m ? a : b */
#define FL__DIST_MUL_UNLESS(m, a, b) ((fl_vf)_mm512_maskz_mul_ps((__mmask16)~(m), (__m512)(a), (__m512)(b)))
#define FL__DIST_MINU(a, b) ((fl_vfi)_mm512_min_epu32((__m512i)(a), (__m512i)(b)))
#elif defined(__AVX2__) && FL_VF_N == 8
/* one blendv / andnot each (the generic and-or blends took 17 instructions a vector in kl, callgrind) */
typedef fl_vfi fl__dist_mask;
#define FL__DIST_ZERO(pv) ((pv) == 0.0f)
#define FL__DIST_SEL(m, a, b) ((fl_vf)_mm256_blendv_ps((__m256)(b), (__m256)(a), (__m256)(m)))
#define FL__DIST_MUL_UNLESS(m, a, b) ((fl_vf)_mm256_andnot_ps((__m256)(m), (__m256)((a) * (b))))
#define FL__DIST_MINU(a, b) ((fl_vfi)_mm256_min_epu32((__m256i)(a), (__m256i)(b)))
#else
typedef fl_vfi fl__dist_mask;
#define FL__DIST_ZERO(pv) ((pv) == 0.0f)
#define FL__DIST_SEL(m, a, b) fl__vf_blend((m), (a), (b))
#define FL__DIST_MUL_UNLESS(m, a, b) fl__vf_blend((m), (fl_vf){0}, (a) * (b))                   /* m ? 0 : a b */
#define FL__DIST_MINU(a, b) fl__vfi_minu((a), (b))
typedef uint32_t fl__dist_vu __attribute__((vector_size(FL_VBYTES)));
FL_INLINE fl_vfi fl__vfi_minu(fl_vfi a, fl_vfi b)
{
    const fl_vfi a_less = (fl_vfi)((fl__dist_vu)a < (fl__dist_vu)b);
    return (a & a_less) | (b & ~a_less);
}
#endif

/* Vectors in lockstep: the loop is bound by its dependency chain (division, log, sum: ~60 cycles), not by its
 * ports; four chains at a time (a few values spilled with AVX2's 16 registers) against two: kl 1 thread, 2000 x
 * 1000 float32, 1.76 -> 1.52 ms, the same instruction count (the table log's five constants leave room where
 * fl__vlog_normal_f32_n's dozen did not: 72 instructions a vector of entropy, most of them reloads) */
#ifndef FL_DIST_XU
#define FL_DIST_XU 4
#endif
#define FL_DIST_GROUP (FL_DIST_XU * FL_VF_N) /* elements of a group of the row path */

/* The running checks of a span (see above); lo and hi ignore a nan argument (they keep the running value).
 * kl: lo and hi are q's, pmin p's minimum, rbits the unsigned minimum of bits(r) - 1 (see fl__kl_ratio). */
typedef struct {
    fl_vf lo, hi, qsum, pmin;
    fl_vfi rbits;
} fl__dist_range;
FL_INLINE void fl__dist_range_init(fl__dist_range *g)
{
    g->lo = (fl_vf){0} + 1.0f;
    g->hi = g->lo;
    g->qsum = (fl_vf){0};
    g->pmin = g->qsum;
    g->rbits = (fl_vfi){0} - 1;
}
FL_INLINE void fl__dist_range_add(fl__dist_range *g, fl_vf v)
{
    /* one min / max instruction each; they return the running value (second operand) where v is nan */
    g->lo = FL__VMIN_KEEP_NAN(v, g->lo);
    g->hi = FL__VMAX_KEEP_NAN(v, g->hi);
}
/* Whether the span must go the double way: an argument outside [2^-126, 1], or a nan q; kl: a q outside
 * [2^-126, 1], a negative p, an r below 2^-126 but not 0. */
FL_INLINE int fl__dist_range_bad(const fl__dist_range *g, const int kind)
{
    int bad = 0;
    for (int l = 0; l < FL_VF_N; l++) {
        bad |= !(g->lo[l] >= 0x1p-126f) | !(g->hi[l] <= 1.0f);
        if (kind == FL_DIST_KL)
            bad |= !(g->pmin[l] >= 0.0f) | ((uint32_t)g->rbits[l] < 0x007fffffu);
        else
            bad |= g->qsum[l] != g->qsum[l];
    }
    return bad;
}

/* kl's term in two steps. r = p / q correctly rounded (a reciprocal would be as fast, but p = q must give r = 1
 * and a term of 0), and its checks into *g; then log(p / q) = log r + log1p(e / (r q)), e = p - r q exact (one
 * FMA), e / (r q) ~ e / p <= 2^-24: the term p log(p / q) = p log r + e (p / (r q)) = p log r + e (1 + O(2^-24)),
 * so e is added to p log r in the term's FMA (rounded once) instead of e / p to the log (a reciprocal and a
 * Newton step). p = 0 needs no case of its own: r = 0 (q is checked normal), whose table log is finite (-127 ln2:
 * its bits read as a normal float's), e = 0, and the term 0 log r + 0 = 0. The checks, five operations a vector
 * (the selects of p = 0 and the range of r were seven; 1 thread, 100,000 x 1,000 from memory, 10% faster with
 * the single-constant ln2 of the log): q within [2^-126, 1] (min, max), p >= 0 (min), and r normal or 0:
 * bits(r) - 1 as unsigned is below 2^23 - 1 exactly where r is subnormal (0 wraps to the top; a subtraction and
 * an unsigned min). With q <= 1, r >= p, so r = 0 only where p = 0 (no underflow of p / q). What they let
 * through is caught by the row's sum: an infinite r (p / q overflowed) gives e = -inf, an infinite q e = nan, a
 * nan p or q r = nan. */
FL_INLINE void fl__kl_ratio(fl_vf pv, fl_vf qv, fl_vf *r, fl__dist_range *g)
{
    *r = pv / qv;
    fl__dist_range_add(g, qv);
    g->pmin = FL__VMIN_KEEP_NAN(pv, g->pmin);
    g->rbits = FL__DIST_MINU((fl_vfi)*r - 1, g->rbits);
}
FL_INLINE void fl__kl_terms(const fl_vf *pv, const fl_vf *qv, const fl_vf *r, fl_vf *term, const int n)
{
    fl_vf lg[FL_DIST_XU];
    fl__vlog_tab_normal_f32_n(r, lg, n);
    FL__EACH(j, n) term[j] = FL__VFMA(pv[j], lg[j], FL__VFNMA(r[j], qv[j], pv[j]));
}

/* kl's terms in double where the level has the table log in double (AVX-512; AVX2: see below), for the rows
 * whose float terms cancel (fl__dist_cancels): p and q widened, r = p / q in double (1 / q by rcp14 and two
 * Newton steps, to 2^-52: a division, 16 cycles a vector of 8, bound the loop), its residual e = p - r q exact
 * (one FMA: |e| is ~2^-52 p, and r q - p has at most 47 significant bits), and
 *   term = p log r + e  (p log(p / q) = p log r + p log1p(e / (r q)) = p log r + e + O(2^-104 p)),
 * log r by fl__vlog_tab_pos_f64_n (within 2.2 ulp of double, and to log1p's relative accuracy near r = 1): each
 * term within ~3 2^-53 of itself, the row's sum in double within a few 2^-53 of sum |term| however the terms
 * cancel. Where q is close to p (the usual reason to take a KL) every row's float terms cancel: these rows went
 * through fdlibm's log and two divisions an element after the float pass, 0.36x JAX's plain p log(p / q) at
 * 65,536 x 1,000 float32 (whose result is then off by 141%); for the order of the passes and the times now see
 * fl_dist_row_kl (this pass alone, before the middle-interval log1p: 29 ms against the float pass's 18.5 on
 * unrelated rows, 2 threads). A term from r in float, e = p - r q and
 * e^2 / (2 p) (2^-49 p: without it, rows of 2 classes with q close to p were off by 1e-4 of their KL) cost more
 * (42 ms with 1 / p by rcp14 and a Newton step). The range checks as the float path's, but r's (a double r is
 * normal for any float p > 0 and q). r = 0 (p = 0): the table log of +0 is finite (its bits read as a normal
 * double's), the term fma(0, log, 0) = 0. t[2j], t[2j + 1]: the two halves of vector j. AVX2: r = p / q by
 * division (correctly rounded, so e is exact too), log r lane by lane (fl__vlog_mid_pos_f64_n: log1p(r - 1) where
 * r is within 3% of 1, as every ratio of a KL with q close to p, fdlibm's elsewhere). */
#if defined(FL__HAVE_LOG_TAB_F64) || defined(FL__HAVE_LOG_MID_F64)
#define FL_DIST_KL_F64 1
FL_INLINE void fl__kl_terms_f64(const fl_vf *pv, const fl_vf *qv, fl_vd *t, const int n, fl__dist_range *g)
{
    fl_vd pd[2 * FL_DIST_XU], ed[2 * FL_DIST_XU];
    FL__EACH(j, n) {
        fl_vd q0, q1;
        fl__dist_range_add(g, qv[j]);
        g->pmin = FL__VMIN_KEEP_NAN(pv[j], g->pmin);
        fl__vf_widen(pv[j], &pd[2 * j], &pd[2 * j + 1]);
        fl__vf_widen(qv[j], &q0, &q1);
        const fl_vd qd[2] = {q0, q1};
        for (int h = 0; h < 2; h++) {
#ifdef FL__HAVE_LOG_TAB_F64
            fl_vd inv = (fl_vd)_mm512_rcp14_pd((__m512d)qd[h]); /* 1 / q to 2^-14, two Newton steps: 2^-52 */
            inv = FL__VDFMA(inv, FL__VDFMA(0.0 - qd[h], inv, (fl_vd){0} + 1.0), inv);
            inv = FL__VDFMA(inv, FL__VDFMA(0.0 - qd[h], inv, (fl_vd){0} + 1.0), inv);
            t[2 * j + h] = pd[2 * j + h] * inv;
#else
            t[2 * j + h] = pd[2 * j + h] / qd[h]; /* AVX2: no rcp14 (rcpps is 2^-12), a division of 4 */
#endif
            ed[2 * j + h] = FL__VDFMA(0.0 - t[2 * j + h], qd[h], pd[2 * j + h]);
        }
    }
#ifdef FL__HAVE_LOG_TAB_F64
    if (!fl__vlog_tab_mid_f64_n(t, 2 * n)) fl__vlog_tab_pos_f64_n(t, 2 * n);
#else
    fl__vlog_mid_pos_f64_n(t, 2 * n); /* r = 0 (p = 0): fdlibm's split reads +0 as a normal too, a finite log */
#endif
    FL__EACH(j, 2 * n) t[j] = FL__VDFMA(pd[j], t[j], ed[j]);
}
#endif

/* The terms of n vectors of p (and q) for `kind` (a constant where inlined), in lockstep (the log's polynomial
 * is a chain of dependent FMAs: n of them interleaved keep the FMA units busy); the checks into *g. Padding
 * lanes hold p = 0, q = 1: a term of 0. */
FL_INLINE void fl__dist_vterms(const int kind, const fl_vf *pv, const fl_vf *qv, fl_vf *term, const int n,
                               fl__dist_range *g)
{
    const fl_vf zero = (fl_vf){0}, one = zero + 1.0f;
    fl__dist_mask pzero[FL_DIST_XU];
    fl_vf arg[FL_DIST_XU], lg[FL_DIST_XU];
    FL__EACH(j, n) {
        if (kind == FL_DIST_KL) {
            fl__kl_ratio(pv[j], qv[j], &arg[j], g);
            continue;
        }
        pzero[j] = FL__DIST_ZERO(pv[j]);
        const fl_vf pnz = FL__DIST_SEL(pzero[j], one, pv[j]); /* p = 0 takes 1 (and a term of 0) */
        fl__dist_range_add(g, pnz); /* negatives to report, subnormals */
        if (kind == FL_DIST_ENTROPY) {
            arg[j] = pnz;
        } else {
            arg[j] = qv[j];
            fl__dist_range_add(g, qv[j]);
            g->qsum += qv[j];
        }
    }
    if (kind == FL_DIST_KL) {
        fl__kl_terms(pv, qv, arg, term, n);
        return;
    }
    fl__vlog_tab_normal_f32_n(arg, lg, n);
    FL__EACH(j, n) term[j] = FL__DIST_MUL_UNLESS(pzero[j], zero - pv[j], lg[j]);
}

/* One vector of elements [j, j + FL_VF_N) of p (and q), the part past n padded with p = 0, q = 1. */
FL_INLINE void fl__dist_vload(const int kind, const void *p, const void *q, fl_index j, fl_index n, fl_vf *pv,
                              fl_vf *qv, const int st)
{
    if (j + FL_VF_N <= n) {
        *pv = fl__vf_load_st(p, j, st);
        *qv = kind == FL_DIST_ENTROPY ? *pv : fl__vf_load_st(q, j, st);
        return;
    }
    float pb[FL_VF_N] = {0}, qb[FL_VF_N];
    for (int l = 0; l < FL_VF_N; l++) qb[l] = 1.0f;
    for (fl_index l = 0; l < n - j; l++) {
        pb[l] = fl_load_st(p, j + l, st);
        if (kind != FL_DIST_ENTROPY) qb[l] = fl_load_st(q, j + l, st);
    }
    *pv = fl__vf_load(pb);
    *qv = kind == FL_DIST_ENTROPY ? *pv : fl__vf_load(qb);
}

#ifdef FL_DIST_KL_F64
/* The far lanes of a vector of a kl row: p != +0 and p, q more than 2^20 float steps apart (bits(p) - bits(q)
 * outside [-2^20, 2^20] as unsigned integers: a relative difference above 2^-3 to 2^-4 by the mantissa; nan,
 * inf and a negative p are far). A row whose lanes are all near is taken as q close to p (see fl_dist_row_kl; its
 * float terms would cancel, or nearly). Integer operations on the inputs' bits alone (three a vector and a test,
 * against five float ones for |p - q| <= p / 32): the same answer from either pass over the row. */
FL_INLINE unsigned fl__kl_far(fl_vf pv, fl_vf qv)
{
#if defined(__AVX512F__) && FL_VF_N == 16
    const __m512i pb = _mm512_castps_si512((__m512)pv), qb = _mm512_castps_si512((__m512)qv);
    const __m512i d = _mm512_add_epi32(_mm512_sub_epi32(pb, qb), _mm512_set1_epi32(1 << 20));
    return _mm512_mask_cmpgt_epu32_mask(_mm512_test_epi32_mask(pb, pb), d, _mm512_set1_epi32(1 << 21));
#else
    typedef uint32_t vu __attribute__((vector_size(FL_VBYTES)));
    const vu pb = (vu)pv, d = pb - (vu)qv + (1u << 20);
    return (unsigned)_mm256_movemask_ps((__m256)((pb != 0) & (d > (1u << 21))));
#endif
}
/* fl__kl_far of one element: its float values' bits (p, q as widened from their dtype) */
FL_INLINE int fl__kl_far1(float p, float q)
{
    uint32_t pb, qb;
    memcpy(&pb, &p, sizeof pb);
    memcpy(&qb, &q, sizeof qb);
    return pb != 0 && pb - qb + (UINT32_C(1) << 20) > (UINT32_C(1) << 21);
}
/* whether the n vectors at the start of a kl row (its first step) are all near */
FL_INLINE int fl__kl_near(const fl_vf *pv, const fl_vf *qv, const int n)
{
    unsigned far = 0;
    FL__EACH(u, n) far |= fl__kl_far(pv[u], qv[u]);
    return far == 0;
}
#endif

/* The terms of the vectors from element j of a span of len elements: FL_DIST_XU vectors where they fit, else
 * one (the last padded); returns how many. The same terms in the same order whatever the grouping. */
FL_INLINE int fl__dist_vterms_at(const int kind, const void *p, const void *q, fl_index j, fl_index len,
                                 fl_vf *term, fl__dist_range *g, const int st)
{
    fl_vf pv[FL_DIST_XU], qv[FL_DIST_XU];
    if (j + FL_DIST_XU * FL_VF_N <= len) {
        FL__EACH(u, FL_DIST_XU) {
            fl_prefetch_vec(p, j + u * FL_VF_N, u, st);
            if (kind != FL_DIST_ENTROPY) fl_prefetch_vec(q, j + u * FL_VF_N, u, st);
            fl__dist_vload(kind, p, q, j + u * FL_VF_N, len, &pv[u], &qv[u], st);
        }
        fl__dist_vterms(kind, pv, qv, term, FL_DIST_XU, g);
        return FL_DIST_XU;
    }
    fl__dist_vload(kind, p, q, j, len, &pv[0], &qv[0], st);
    fl__dist_vterms(kind, pv, qv, term, 1, g);
    return 1;
}

/* v[0] + ... + v[n - 1], pairwise (n a power of 2 up to 8) */
FL_INLINE fl_vf fl__dist_vsum(const fl_vf *v, const int n)
{
    if (n == 1) return v[0];
    if (n == 2) return v[0] + v[1];
    if (n == 3) return (v[0] + v[1]) + v[2];
    if (n == 4) return (v[0] + v[1]) + (v[2] + v[3]);
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Whether a row's terms, summed to `sum` with absolute values summing to `abs_sum`, cancel too much for the
 * float terms' ~2 ulp each (then the double path does the row). */
FL_INLINE int fl__dist_cancels(double sum, double abs_sum) { return abs_sum > 4.0 * fabs(sum); }

#ifdef FL_DIST_KL_F64
/* kl's terms where every lane of the n vectors is near (fl__kl_far 0: p = +0, or p and q within 1/7 of q), in
 * float, exactly rearranged so that nothing cancels in them: with d = p - q (exact: p and q within a factor of 2)
 * and u = d / q,
 *   p log(p / q) = d + q phi(u),  phi(u) = (1 + u) log1p(u) - u = u^2 G(u) >= 0,
 * the d summed in double (exact floats: the row's sum of d within 2^-53 sum |d|) and t = q phi(u) >= 0 in float:
 * u = d / q rounded, rho = d - u q exact (the remainder of a rounded division, one FMA), and to first order in
 * rho, q phi(d / q) = u G(u) (d + rho); G of degree 5 (a relative minimax over [-0.1251, 0.143]: 2^-27, rounded
 * to float). Each t within 2.9 ulp of q phi (mean 0.7; ~12,000 pairs at |u| from 1e-5 to 0.12, this float
 * arithmetic simulated in NumPy, against 50 digits), a group's t added pairwise in float (positive terms: 1 ulp
 * more); the row's sum of t then within ~4 ulp of itself, and the row's value too where |sum d + sum t| >= sum t
 * / 2 (fl__kl_row_f64 checks; else the row takes the double terms). p = 0 lanes: d = 0, so u = rho = t = 0 (q
 * nan or 0 there: t nan, or the range check). The double terms (fl__kl_terms_f64) are ~50 operations a vector
 * where q is close to p, these ~30 (counted from the source; the times: fl_dist_row_kl). *dlo, *dhi: the running
 * sums of d; returns the group's t summed. */
FL_INLINE fl_vf fl__kl_near_terms(const fl_vf *pv, const fl_vf *qv, const int n, fl_vd *dlo, fl_vd *dhi,
                                  fl__dist_range *g)
{
    fl_vf t[FL_DIST_XU];
    FL__EACH(j, n) {
        fl__dist_range_add(g, qv[j]);
        g->pmin = FL__VMIN_KEEP_NAN(pv[j], g->pmin);
        const fl_vf d = FL__DIST_SEL(FL__DIST_ZERO(pv[j]), (fl_vf){0}, pv[j] - qv[j]);
        const fl_vf u = d / qv[j];
        const fl_vf rho = FL__VFNMA(u, qv[j], d);
        fl_vf gu = (fl_vf){0} - 0.023300914093852043f;
        gu = FL__VFMA(gu, u, (fl_vf){0} + 0.03379620239138603f);
        gu = FL__VFMA(gu, u, (fl_vf){0} - 0.050012748688459396f);
        gu = FL__VFMA(gu, u, (fl_vf){0} + 0.08333031088113785f);
        gu = FL__VFMA(gu, u, (fl_vf){0} - 0.16666662693023682f);
        gu = FL__VFMA(gu, u, (fl_vf){0} + 0.5f);
        t[j] = (u * gu) * (d + rho);
        fl__vf_add_widened(dlo, dhi, d);
    }
    return fl__dist_vsum(t, n);
}

/* kl's row in double terms (fl__kl_terms_f64), or where near (near_ok) the rearranged float terms
 * (fl__kl_near_terms), decided a group (or a last vector) at a time by its far lanes: the groups of FL_DIST_XU
 * vectors, then the last vectors one at a time (the last padded: p = 0, q = 1, a term of 0); each group's terms
 * added pairwise before the running sum. 1 and *out = the sum, 2 where the near terms' sum cancels against the
 * sum of d (see fl__kl_near_terms), or 0 where the double path must do it (the range checks; a sum not finite);
 * *near: the row's first step (fl__kl_near). */
FL_INLINE int fl__kl_row_f64(const void *p, const void *q, fl_index n, double *out, const int st, int *near,
                             const int near_ok)
{
    fl__dist_range g;
    fl__dist_range_init(&g);
    fl_vd acc = (fl_vd){0}, dlo = acc, dhi = acc, tsum = acc;
    fl_index j = 0;
    for (; j + FL_DIST_XU * FL_VF_N <= n; j += FL_DIST_XU * FL_VF_N) {
        fl_vf pv[FL_DIST_XU], qv[FL_DIST_XU];
        fl_vd t[2 * FL_DIST_XU];
        unsigned far = 0;
        FL__EACH(u, FL_DIST_XU) {
            fl_prefetch_vec(p, j + u * FL_VF_N, u, st);
            fl_prefetch_vec(q, j + u * FL_VF_N, u, st);
            pv[u] = fl__vf_load_st(p, j + u * FL_VF_N, st);
            qv[u] = fl__vf_load_st(q, j + u * FL_VF_N, st);
            far |= fl__kl_far(pv[u], qv[u]);
        }
        if (j == 0) *near = far == 0;
        if (near_ok && far == 0) {
            fl_vd lo, hi;
            fl__vf_widen(fl__kl_near_terms(pv, qv, FL_DIST_XU, &dlo, &dhi, &g), &lo, &hi);
            tsum += lo + hi;
            continue;
        }
        fl__kl_terms_f64(pv, qv, t, FL_DIST_XU, &g);
        for (int w = FL_DIST_XU; w >= 1; w /= 2)
            FL__EACH(u, w) t[u] += t[u + w];
        acc += t[0];
    }
    for (; j < n; j += FL_VF_N) {
        fl_vf pv, qv;
        fl_vd t[2];
        fl__dist_vload(FL_DIST_KL, p, q, j, n, &pv, &qv, st);
        const unsigned far = fl__kl_far(pv, qv);
        if (j == 0) *near = far == 0;
        if (near_ok && far == 0) {
            fl_vd lo, hi;
            fl__vf_widen(fl__kl_near_terms(&pv, &qv, 1, &dlo, &dhi, &g), &lo, &hi);
            tsum += lo + hi;
            continue;
        }
        fl__kl_terms_f64(&pv, &qv, t, 1, &g);
        acc += t[0] + t[1];
    }
    if (fl__dist_range_bad(&g, FL_DIST_KL)) return 0;
    double sum = 0.0, ts = 0.0, ds = 0.0;
    dlo += dhi;
    for (int l = 0; l < FL_VD_N; l++) {
        sum += acc[l];
        ts += tsum[l];
        ds += dlo[l];
    }
    sum += ds + ts;
    if (!isfinite(sum)) return 0;
    if (ts > 2.0 * fabs(sum)) return 2;
    *out = sum;
    return 1;
}
/* kl's row in double terms, the near groups rearranged (fl__kl_row_f64) in rows longer than the flat path's
 * (a short row's value is the same bits from the flat path or this one: both the double terms): 1 and *out = the
 * sum, or 0 where the double path must do it */
FL_INLINE int fl_dist_row_kl_f64(const void *p, const void *q, fl_index n, double *out, const int st, int *near)
{
    const int ok = fl__kl_row_f64(p, q, n, out, st, near, n > FL_DIST_SHORT_ROWS_F);
    return ok == 2 ? fl__kl_row_f64(p, q, n, out, st, near, 0) : ok;
}
#endif

/* One row of n elements, vector by vector: 1 and *out = the sum, or 0 where the double path must do it. The
 * full groups of FL_DIST_XU vectors in a loop of their own, loaded without the tail's test: with the padded
 * load (its element copies, calls to memcpy) inside, gcc kept the accumulators on the stack, a load and a store
 * each a vector (callgrind, kl 1000 classes float32: 81 instructions a vector). A group's terms are added in
 * float before they are widened (one more rounding of 2^-24 |term|, within the terms' own ~2 ulp): the
 * widening costs five instructions. A row whose sum is not finite goes the double way (a nan p: its measure is
 * nan either way). The last vectors one at a time, each waiting on its log's chain (a row of 100 costs what
 * one of 128 does); a padded group in lockstep instead made the loop above 16% slower (its registers): rows
 * up to FL_DIST_SHORT_ROWS_F go the flat path. */
FL_INLINE int fl__dist_row_float(const int kind, const void *p, const void *q, fl_index n, double *out,
                                 const int st, int *near)
{
    fl__dist_range g;
    fl__dist_range_init(&g);
    fl_vd slo = (fl_vd){0}, shi = slo;
    fl_vf abs_acc = (fl_vf){0}; /* kl: sum |term| only decides whether the row cancels: float is enough */
    fl_vf term[FL_DIST_XU];
    fl_index j = 0;
    for (; j + FL_DIST_XU * FL_VF_N <= n; j += FL_DIST_XU * FL_VF_N) {
        fl_vf pv[FL_DIST_XU], qv[FL_DIST_XU];
        FL__EACH(u, FL_DIST_XU) {
            fl_prefetch_vec(p, j + u * FL_VF_N, u, st);
            if (kind != FL_DIST_ENTROPY) fl_prefetch_vec(q, j + u * FL_VF_N, u, st);
            pv[u] = fl__vf_load_st(p, j + u * FL_VF_N, st);
            qv[u] = kind == FL_DIST_ENTROPY ? pv[u] : fl__vf_load_st(q, j + u * FL_VF_N, st);
        }
#ifdef FL_DIST_KL_F64
        if (kind == FL_DIST_KL && near && j == 0) *near = fl__kl_near(pv, qv, FL_DIST_XU);
#endif
        fl__dist_vterms(kind, pv, qv, term, FL_DIST_XU, &g);
        /* pairwise: one addition a group on the loop-carried chains, not FL_DIST_XU */
        fl__vf_add_widened(&slo, &shi, fl__dist_vsum(term, FL_DIST_XU));
        if (kind == FL_DIST_KL) {
            fl_vf a[FL_DIST_XU];
            FL__EACH(u, FL_DIST_XU) a[u] = (fl_vf)((fl_vfi)term[u] & 0x7fffffff);
            abs_acc += fl__dist_vsum(a, FL_DIST_XU);
        }
    }
    for (; j < n; j += FL_VF_N) { /* the last vectors, one at a time (the last padded) */
        fl_vf pv, qv;
        fl__dist_vload(kind, p, q, j, n, &pv, &qv, st);
#ifdef FL_DIST_KL_F64
        if (kind == FL_DIST_KL && near && j == 0) *near = fl__kl_near(&pv, &qv, 1);
#endif
        fl__dist_vterms(kind, &pv, &qv, &term[0], 1, &g);
        fl__vf_add_widened(&slo, &shi, term[0]);
        if (kind == FL_DIST_KL) abs_acc += (fl_vf)((fl_vfi)term[0] & 0x7fffffff);
    }
    if (fl__dist_range_bad(&g, kind)) return 0;
    slo += shi;
    double sum = 0.0, abs_sum = 0.0;
    for (int l = 0; l < FL_VD_N; l++) sum += slo[l];
    for (int l = 0; l < FL_VF_N; l++) abs_sum += (double)abs_acc[l];
    if (!isfinite(sum)) return 0;
    if (kind == FL_DIST_KL && fl__dist_cancels(sum, abs_sum)) return 0; /* AVX-512: fl_dist_row_kl redoes it */
    *out = sum;
    return 1;
}

#ifdef FL_DIST_KL_F64
/* kl's rows where the level has double terms (AVX-512, AVX2). A row is taken as q close to p where its first step is
 * (fl__kl_near): then its value is the double terms' (its float terms would cancel, or nearly: p log(p / q) ~
 * p (p - q) / q, summing to a KL of ~sum (p - q)^2 / p); else the float terms' where they do not cancel, and the
 * double terms' where they do. The rule depends on the row alone; *hint (the previous row of the block was near)
 * only picks which pass goes first, so that a run of near rows skips the float pass it would throw away
 * (q = p e^N(0, 1e-3), float32, 2 threads, this Intel Xeon: 65,536 x 1,000 38 -> 24-26 ms, 4,096 x 32,000 72 ->
 * 44 ms; unrelated rows unchanged, 17-20 and 30-31 ms). AVX2 (fl__kl_terms_f64's division and lane-by-lane log), the
 * same machine at FASTLOSS_SIMD=avx2: q close to p 65,536 x 1,000 516 -> 29 ms (e^N(0, 1e-2): 524 -> 62), where these
 * rows went the double way (fdlibm's log and two divisions an element). Since ffee05d the near groups of rows
 * longer than the flat path's take fl__kl_near_terms (no log) in place of the double terms: AMD EPYC Zen 4, 2
 * threads, q = p e^N(0, 1e-3), 65,536 x 1,000 31.7 -> 19.2 ms, 4,096 x 32,000 65 -> 38 ms (AVX2 level 33.4 ->
 * 19.7, 81.5 -> 42.4; unrelated rows unchanged). */
FL_INLINE int fl_dist_row_kl(const void *p, const void *q, fl_index n, double *out, const int st, int *hint)
{
    int near = 0;
    double f;
    if (*hint) {
        const int ok = fl_dist_row_kl_f64(p, q, n, out, st, &near);
        if (near) return ok;
        *hint = 0;
        if (fl__dist_row_float(FL_DIST_KL, p, q, n, &f, st, &near)) {
            *out = f;
            return 1;
        }
        return ok;
    }
    if (fl__dist_row_float(FL_DIST_KL, p, q, n, &f, st, &near) && !near) {
        *out = f;
        return 1;
    }
    *hint = near;
    return fl_dist_row_kl_f64(p, q, n, out, st, &near);
}
#endif

FL_INLINE int fl_dist_row_float_vec(const int kind, const void *p, const void *q, fl_index n, double *out,
                                    const int st, int *hint)
{
#ifdef FL_DIST_KL_F64
    if (kind == FL_DIST_KL) return fl_dist_row_kl(p, q, n, out, st, hint);
#endif
    (void)hint;
    return fl__dist_row_float(kind, p, q, n, out, st, NULL);
}

/* A short row's float terms summed as the flat path's tiles sum them: in class order, in double from 0; and
 * sum |term| in float, in the same order (it only picks the rows whose terms cancel: see fl__dist_row_float) */
FL_INLINE double fl__dist_flat_fsum(const float *t, fl_index n, float *abs_sum)
{
    double s = 0.0;
    float a = 0.0f;
    for (fl_index j = 0; j < n; j++) {
        s += (double)t[j];
        a += fabsf(t[j]);
    }
    *abs_sum = a;
    return s;
}

#ifdef FL_DIST_KL_F64
/* Short kl rows where the level has double terms (AVX-512, AVX2). As the row path's rule (fl_dist_row_kl), but over
 * the whole row: a row whose elements are all near (fl__kl_far: p = 0 or p, q within ~2^-4) takes its double
 * terms' sum, another its float terms' where they do not cancel and its double terms' where they do. A span is
 * done in one of two orders, by the hint (most of the thread's previous span needed the double terms); both give
 * every row the same bits:
 *  - float first (fl_dist_rows_flat_vec): the span's float terms; the rows that do not cancel checked for near
 *    an element at a time (most unrelated rows stop at their first), then the double terms of the span at once
 *    (fl__dist_flat_kl_terms_f64) where many rows are near or cancel, of those rows alone where few are;
 *  - double first (fl__dist_flat_kl_near): the span's double terms and far lanes, then the float terms of its
 *    rows with a far lane, a row at a time.
 * Where q is close to p, every span computed both passes before: 1,000,000 x 10 float32, 2 threads, this Intel
 * Xeon, q = p e^N(0, 1e-3): 11.3-12.7 -> 6.6-7.0 ms (e^N(0, 1e-2): 12.7-15.0 -> 7.5-8.5); AVX2 48 -> 8 ms (13
 * with 1e-2). Unrelated rows pay the near check of the rows that do not cancel: 100,000 x 20 from cache 10% (as
 * masks of every vector in the float pass and a row's bits from them, 13-16%), and from memory (1,000,000 x 10)
 * nothing seen, the span's double terms no longer computed for a row that cancels now and then (6.0 -> 4.9 ms;
 * AVX2 5.7 -> 5.9). */
/* the far lanes of a span, a bit an element (element j: bit j % 8 of byte j / 8), 8 bytes past the last */
#define FL_DIST_FAR_BYTES ((FL_DIST_FLAT_ROWS + FL_DIST_XU * FL_VF_N) / 8 + 8)

/* whether row r of a span (rows of n elements from the span's start) has a far lane: its n bits of far[], 56 at
 * a time (one a row up to 56 elements) */
FL_INLINE int fl__kl_row_far(const unsigned char *far, fl_index r, fl_index n)
{
    for (fl_index b = r * n, end = b + n; b < end; b += 56) {
        const fl_index m = end - b < 56 ? end - b : 56;
        uint64_t w;
        memcpy(&w, far + (b >> 3), sizeof w);
        if ((w >> (b & 7)) & ((UINT64_C(1) << m) - 1u)) return 1;
    }
    return 0;
}

/* whether the n elements from j0 are all near (fl__kl_far1), stopping at the first far one */
FL_INLINE int fl__kl_row_near(const void *p, const void *q, fl_index j0, fl_index n, const int st)
{
    for (fl_index j = j0; j < j0 + n; j++)
        if (fl__kl_far1(fl_load_st(p, j, st), fl_load_st(q, j, st))) return 0;
    return 1;
}

/* The double terms of elements j0 .. len - 1 of a span of short kl rows into tb + j0 .., vector by vector from
 * j0 as the float terms (the last padded: a term of 0), the range checks into *g, and (far != NULL; j0 = 0) each
 * vector's far lanes. A term is its element's alone: a row's terms are the same from the span's start or its own. */
FL_INLINE void fl__dist_flat_kl_terms_f64(const void *p, const void *q, fl_index j0, fl_index len, double *tb,
                                          fl__dist_range *g, unsigned char *far, const int st)
{
    for (fl_index j = j0; j < len;) {
        fl_vf pv[FL_DIST_XU], qv[FL_DIST_XU];
        fl_vd t[2 * FL_DIST_XU];
        int nv = 1;
        if (j + FL_DIST_XU * FL_VF_N <= len) {
            FL__EACH(u, FL_DIST_XU) {
                fl_prefetch_vec(p, j + u * FL_VF_N, u, st);
                fl_prefetch_vec(q, j + u * FL_VF_N, u, st);
                fl__dist_vload(FL_DIST_KL, p, q, j + u * FL_VF_N, len, &pv[u], &qv[u], st);
            }
            fl__kl_terms_f64(pv, qv, t, FL_DIST_XU, g);
            nv = FL_DIST_XU;
        } else {
            fl__dist_vload(FL_DIST_KL, p, q, j, len, &pv[0], &qv[0], st);
            fl__kl_terms_f64(pv, qv, t, 1, g);
        }
        if (far)
            for (int u = 0; u < nv; u++) {
                const unsigned m = fl__kl_far(pv[u], qv[u]);
                memcpy(far + (j + u * FL_VF_N) / 8, &m, FL_VF_N / 8); /* little-endian: lane l is bit l */
            }
        for (int u = 0; u < 2 * nv; u++) fl__vd_store(tb + j + u * FL_VD_N, t[u]);
        j += nv * FL_VF_N;
    }
}

/* a short row's double terms summed in vectors of FL_VD_N (the last masked), reduced in a fixed order: 1 and
 * *out = the sum, or 0 where it is not finite (the row path does the row) */
FL_INLINE int fl__dist_flat_kl_dsum(const double *t, fl_index n, double *out)
{
    fl_vd acc = (fl_vd){0};
    fl_index j = 0;
    for (; j + FL_VD_N <= n; j += FL_VD_N) acc += fl__vd_load(t + j);
#if defined(__AVX512F__) && FL_VD_N == 8
    if (j < n) acc += (fl_vd)_mm512_maskz_loadu_pd((__mmask8)((1u << (n - j)) - 1u), t + j);
    const double sum = _mm512_reduce_add_pd((__m512d)acc);
#else
    if (j < n) {
        const __m256i k = _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n - j)), _mm256_setr_epi64x(0, 1, 2, 3));
        acc += (fl_vd)_mm256_maskload_pd(t + j, k);
    }
    const double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
#endif
    if (!isfinite(sum)) return 0;
    *out = sum;
    return 1;
}

/* The span in the double-first order (see above): 1 where it is done (done[] set as the float-first order sets
 * it), 0 where most rows are far (the caller goes float first; nothing written). The float checks of the rows
 * with a far lane complete the span's: near rows cannot fail them (q normal and p / q within 2^(+-1/8), or p = 0
 * and r = 0), so the span is bad exactly where the float pass finds it so. */
FL_INLINE int fl__dist_flat_kl_near(const void *p, const void *q, fl_index rows, fl_index n, double *out,
                                    unsigned char *done, const int st)
{
    double tb[FL_DIST_FLAT_ROWS + FL_DIST_XU * FL_VF_N];
    unsigned char far[FL_DIST_FAR_BYTES] = {0};
    fl__dist_range g;
    fl__dist_range_init(&g);
    fl__dist_flat_kl_terms_f64(p, q, 0, rows * n, tb, &g, far, st);
    unsigned char is_far[FL_DIST_FLAT_ROWS];
    fl_index n_far = 0;
    for (fl_index r = 0; r < rows; r++) n_far += is_far[r] = (unsigned char)fl__kl_row_far(far, r, n);
    if (2 * n_far > rows) return 0;
    for (fl_index r = 0; r < rows; r++) done[r] = 0;
    if (fl__dist_range_bad(&g, FL_DIST_KL)) return 1;
    float tf[FL_DIST_FLAT_ROWS + 2 * FL_VF_N];
    for (fl_index r = 0; r < rows; r++) {
        if (!is_far[r]) continue;
        for (fl_index j = r * n; j < r * n + n;) { /* the row's elements from its start, the last padded */
            fl_vf term[FL_DIST_XU];
            const int nv = fl__dist_vterms_at(FL_DIST_KL, p, q, j, r * n + n, term, &g, st);
            for (int u = 0; u < nv; u++) fl__vf_store(tf + j + u * FL_VF_N, term[u]);
            j += nv * FL_VF_N;
        }
    }
    if (fl__dist_range_bad(&g, FL_DIST_KL)) return 1;
    for (fl_index r = 0; r < rows; r++) {
        if (is_far[r]) {
            float a;
            const double s = fl__dist_flat_fsum(tf + r * n, n, &a);
            if (!isfinite(s)) continue; /* the row path, as float first */
            if (!fl__dist_cancels(s, (double)a)) {
                out[r] = s;
                done[r] = 1;
                continue;
            }
        }
        done[r] = (unsigned char)fl__dist_flat_kl_dsum(tb + r * n, n, &out[r]);
    }
    return 1;
}
#endif

/* Short rows, contiguous (rows*n elements from p and q): a row of 10 fills a vector badly, so the terms of the
 * whole span are computed as one flat array into tb, and each row summed from there in double, in an order
 * fixed by n alone (whatever the threads). Where the span has anything special, or a row cancels, done[row]
 * stays 0 and the double path does that row. kl where the level has double terms: see fl__dist_flat_kl_near
 * (hint: the order to try first, never the result). */
#define FL_DIST_FLOAT_VEC 1
FL_INLINE void fl_dist_rows_flat_vec(const int kind, const void *p, const void *q, fl_index rows, fl_index n,
                                     double *out, unsigned char *done, const int st, int *hint)
{
#ifdef FL_DIST_KL_F64
    if (kind == FL_DIST_KL && *hint) {
        if (fl__dist_flat_kl_near(p, q, rows, n, out, done, st)) return;
        *hint = 0;
    }
#define FL__KL_NEAR(r) (kind == FL_DIST_KL && fl__kl_row_near(p, q, (r) * n, n, st))
#else
    (void)hint;
#define FL__KL_NEAR(r) 0
#endif
    float tb[FL_DIST_FLAT_ROWS + FL_DIST_XU * FL_VF_N];
    const fl_index len = rows * n;
    fl__dist_range g;
    fl__dist_range_init(&g);
    for (fl_index j = 0; j < len;) {
        fl_vf term[FL_DIST_XU];
        const int nv = fl__dist_vterms_at(kind, p, q, j, len, term, &g, st);
        for (int u = 0; u < nv; u++) fl__vf_store(tb + j + u * FL_VF_N, term[u]);
        j += nv * FL_VF_N;
    }
    unsigned char redo[FL_DIST_FLAT_ROWS]; /* kl: the rows whose float terms cancel, or near rows */
    fl_index n_redo = 0;
    for (fl_index r = 0; r < rows; r++) done[r] = redo[r] = 0;
    if (fl__dist_range_bad(&g, kind)) return;
    fl_index r0 = 0;
    /* FL_TILE_F32 rows at a time, their terms transposed in registers (vmath.h's tile load: a row a lane), each
     * row's sum one lane of a double accumulator, class by class. Summed alone, a row of 10 (a conversion and
     * an addition an element, the checks, a chain a row) was over half of kl_flat's profile; this way 1M x 10
     * float32, kl + entropy + cross-entropy, 1 thread, took 13% less in all */
    for (; r0 < rows; r0 += FL_TILE_F32) {
        const fl_index tr = rows - r0 < FL_TILE_F32 ? rows - r0 : FL_TILE_F32;
        float buf[FL_DIST_SHORT_ROWS_F * FL_TILE_F32];
        if (!fl_tile_load_f32(buf, tb + r0 * n, (long)n, (long)n, (long)tr)) break; /* the row loop below */
        fl_vd slo = (fl_vd){0}, shi = slo;
        fl_vf a = (fl_vf){0};
        for (fl_index c = 0; c < n; c++) {
            const fl_vf v = fl__vf_load(buf + c * FL_TILE_F32);
            fl_vd vlo, vhi;
            fl__vf_widen(v, &vlo, &vhi);
            slo += vlo;
            shi += vhi;
            if (kind == FL_DIST_KL) a += (fl_vf)((fl_vfi)v & 0x7fffffff);
        }
        for (fl_index l = 0; l < tr; l++) {
            const double sum = l < FL_VD_N ? slo[l] : shi[l - FL_VD_N];
            /* a nan p: the double path (as the row path); entropy's and cross-entropy's terms are >= 0 here */
            if (!isfinite(sum)) continue;
            if (kind == FL_DIST_KL && (fl__dist_cancels(sum, (double)a[l]) || FL__KL_NEAR(r0 + l))) {
                n_redo += redo[r0 + l] = 1;
                continue;
            }
            out[r0 + l] = sum;
            done[r0 + l] = 1;
        }
    }
    for (fl_index r = r0; r < rows; r++) { /* a level without a tile load (none now: AVX2 and AVX-512 have one) */
        float a;
        const double s = fl__dist_flat_fsum(tb + r * n, n, &a);
        if (!isfinite(s)) continue; /* a nan p: the double path (as the row path) */
        /* entropy's and cross-entropy's terms are all >= 0 here */
        if (kind == FL_DIST_KL && (fl__dist_cancels(s, (double)a) || FL__KL_NEAR(r))) {
            n_redo += redo[r] = 1;
            continue;
        }
        out[r] = s;
        done[r] = 1;
    }
#undef FL__KL_NEAR
#ifdef FL_DIST_KL_F64
    if (kind == FL_DIST_KL) *hint = 2 * n_redo > rows;
    if (n_redo) {
        /* the double terms of the span at once; of the rows alone where they are few (unrelated rows, a row that
         * cancels now and then: the span's pass cost AVX2 1,000,000 x 10 float32 5.9 -> 10.6 ms). A term is its
         * element's alone (lane by lane, the log's shortcut the same bits): the same terms either way. */
        double td[FL_DIST_FLAT_ROWS + FL_DIST_XU * FL_VF_N];
        fl__dist_range gd; /* a part of the float pass's, checked */
        fl__dist_range_init(&gd);
        const int by_row = 4 * n_redo < rows;
        if (!by_row) fl__dist_flat_kl_terms_f64(p, q, 0, len, td, &gd, NULL, st);
        for (fl_index r = 0; r < rows; r++) {
            if (!redo[r]) continue;
            if (by_row) fl__dist_flat_kl_terms_f64(p, q, r * n, r * n + n, td, &gd, NULL, st);
            done[r] = (unsigned char)fl__dist_flat_kl_dsum(td + r * n, n, &out[r]);
        }
    }
#else
    (void)n_redo;
#endif
}
#else
#define FL_DIST_GROUP 1
static inline int fl_dist_row_float_vec(int kind, const void *p, const void *q, fl_index n, double *out, int st,
                                        int *hint)
{
    (void)kind, (void)p, (void)q, (void)n, (void)out, (void)st, (void)hint;
    return 0;
}
#endif

/* ---- one element of binary_cross_entropy_with_logits ------------------------------------------------------
 * torch's loss, with lw = 1 + (pw - 1) y and softplus(-x) = -log sigmoid(x) = log1p(exp(-|x|)) + max(-x, 0):
 *   loss = (1 - y) x + lw softplus(-x),        d loss / dx = lw sigmoid(x) - pw y,
 *   d2 loss / dx2 = lw sigmoid(x) sigmoid(-x) = lw e / (1 + e)^2,
 * computed in forms without cancellation, with e = exp(-|x|) (no overflow for any x):
 *   x >= 0:  loss = (1 - y) x + lw log1p(e),   d = ((1 - y) - pw y e) / (1 + e)
 *   x <  0:  loss = -pw y x + lw log1p(e),     d = (e (1 - y) - pw y) / (1 + e)
 * (torch's own form loses all of a loss of 4e-18 at x = -40, y = 0 to x + (-x + tiny), even in double).
 * Infinite x: torch's form, for its edge values: x = +inf with y = 1 and x = -inf give nan (0 * inf,
 * inf - inf); nan propagates. */
FL_INLINE double fl_bce_elem(double x, double y, double pw, int flag, double *dloss, double *d2loss)
{
    (void)flag;
    const double e = fl_exp_f64(-fabs(x)), l1p = fl_log1p_f64(e), inv = 1.0 / (1.0 + e);
    const double lw = 1.0 + (pw - 1.0) * y;
    const double stable = (x >= 0.0 ? (1.0 - y) * x : -pw * y * x) + lw * l1p;
    const double torch = (1.0 - y) * x + lw * (l1p + (x < 0.0 ? -x : 0.0));
    *dloss = (x >= 0.0 ? (1.0 - y) - pw * y * e : e * (1.0 - y) - pw * y) * inv;
    *d2loss = lw * e * inv * inv;
    return fabs(x) == INFINITY ? torch : stable;
}

/* The vector form (fl_velem_fn, common.h) of fl_bce_elem for float data without weight or pos_weight (lw = pw
 * = 1), the same forms, from e = exp(-|x|), log1p(e) and 1 / (1 + e) of vmath.h: loss = max(x, 0) - y x +
 * log1p(e). n vectors in lockstep. */
#ifdef FL_VF_N
FL_INLINE void fl_bce_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float param,
                            int flag, const int n)
{
    (void)param, (void)flag;
    fl_vf e[FL__XU], inv[FL__XU], l1p[FL__XU];
    FL__EACH(j, n) e[j] = (fl_vf)((fl_vfi)x[j] | INT32_MIN); /* -|x|: the sign bit set */
    fl__vexp_f32_n(e, n);
    fl__vlog1p_unit_f32_n(e, l1p, inv, n);
    FL__EACH(j, n) {
        const fl_vf y1 = 1.0f - y[j];
        const fl_vfi neg = x[j] < 0.0f;
        const fl_vfi inf = (fl_vfi)x[j] + (fl_vfi)x[j] == (fl_vfi)((fl_vf){0} + INFINITY) + (fl_vfi)((fl_vf){0} + INFINITY);
        const fl_vf stable = FL__VFMA(0.0f - y[j], x[j], fl__vf_blend(neg, (fl_vf){0}, x[j])) + l1p[j];
        const fl_vf torch = FL__VFMA(y1, x[j], fl__vf_blend(neg, l1p[j] - x[j], l1p[j]));
        loss[j] = fl__vf_blend(inf, torch, stable);
        dloss[j] = fl__vf_blend(neg, FL__VFMA(e[j], y1, 0.0f - y[j]), FL__VFMA(0.0f - y[j], e[j], y1)) * inv[j];
        d2loss[j] = e[j] * inv[j] * inv[j];
    }
}
#define FL_BCE_VELEM fl_bce_velem
#else
#define FL_BCE_VELEM NULL
#endif

/* ---- one element of kl_div (torch): x = log q; y = p, or log p with log_target -----------------------------
 *   loss = xlogy(y, y) - y x,  d/dx = -y;       log_target: loss = exp(y) (y - x),  d/dx = -exp(y)
 * (linear in x: d2/dx2 = 0). y = 0 gives 0 without log_target (unless x = -inf: 0 * inf = nan, as torch); a
 * negative y gives nan. */
FL_INLINE double fl_kl_div_elem(double x, double y, double pw, int log_target, double *dloss, double *d2loss)
{
    (void)pw;
    *d2loss = 0.0;
    if (log_target) {
        const double p = fl_exp_f64(y);
        *dloss = -p;
        return p * (y - x);
    }
    *dloss = -y;
    return (y == 0.0 ? 0.0 : y * fl_log_f64(y)) - y * x;
}

/* The vector forms (fl_velem_fn) of fl_kl_div_elem for float data without log_target (the block passes NULL
 * there). fl__kl_div_vterms_f64: the terms in double of each vector's two halves (t[j] the low half of vector j,
 * t[n + j] the high half), y (log y - x), log y - x by fl__kl_div_vdiff (the table log's parts where the level
 * has it, AVX-512; else fl__vlog_pos_f64_n, fl_log_f64's bits); y <= 0, inf and nan take the element form's
 * values: log y blended to nan (y < 0) or y itself (inf, nan; y = 0 gives a term of 0). The element form's
 * y log y - y x is the same value but for its roundings: where log y and x cancel, y (log y - x) keeps more of
 * it. With fdlibm's log ~8 cycles an element (a division and ~30 operations each 4 doubles, spilled).
 * fl__kl_div_velem_f64: the same rounded once to float. */
#ifdef FL_VF_N
/* v[j] = log v[j] - x[j] for n positive normal doubles v. With the table log (AVX-512): k ln2 + (logc_i - x) +
 * log1p(z), ln2 rounded to double (k times its 2.3e-17 below 2^-50 for any float), one FMA where log v and then
 * the difference took three operations on the FMA ports, the bottleneck here (and rounded at the difference's
 * size, not log v's); log1p(z) to an absolute 2^-55.6 (fl__vlog1p_tab_abs_f64, one FMA fewer again) */
FL_INLINE void fl__kl_div_vdiff(fl_vd *v, const fl_vd *x, const int n)
{
#ifdef FL__HAVE_LOG_TAB_F64
    fl_vd k[2 * FL__XU], logc[2 * FL__XU], z[2 * FL__XU];
    fl__vlog_tab_parts_f64_n(v, k, logc, z, n);
    FL__EACH(j, n) {
        v[j] = FL__VDFMA(k[j], (fl_vd){0} + 0x1.62e42fefa39efp-1, logc[j] - x[j]) + fl__vlog1p_tab_abs_f64(z[j]);
    }
#else
    fl__vlog_pos_f64_n(v, n);
    FL__EACH(j, n) v[j] -= x[j];
#endif
}
FL_INLINE void fl__kl_div_vterms_f64(const fl_vf *x, const fl_vf *y, fl_vd *t, const int n)
{
    fl_vd xd[2 * FL__XU], yd[2 * FL__XU];
    FL__EACH(j, n) {
        fl__vf_widen(x[j], &xd[j], &xd[n + j]);
        fl__vf_widen(y[j], &yd[j], &yd[n + j]);
    }
    FL__EACH(j, 2 * n) t[j] = fl__vd_blend((yd[j] > 0.0) & (yd[j] < INFINITY), yd[j], (fl_vd){0} + 1.0);
    fl__kl_div_vdiff(t, xd, 2 * n);
    FL__EACH(j, 2 * n) {
        const fl_vd special = fl__vd_blend(yd[j] < 0.0, (fl_vd){0} + NAN, yd[j]);
        const fl_vd odd = (fl_vd)(~(yd[j] == 0.0) & (fl_vdi)(yd[j] * special)) - yd[j] * xd[j];
        t[j] = fl__vd_blend((yd[j] > 0.0) & (yd[j] < INFINITY), yd[j] * t[j], odd);
    }
}
FL_INLINE void fl__kl_div_velem_f64(const fl_vf *x, const fl_vf *y, fl_vf *loss, const int n)
{
    fl_vd t[2 * FL__XU];
    fl__kl_div_vterms_f64(x, y, t, n);
    FL__EACH(j, n) loss[j] = fl__vf_narrow(t[j], t[n + j]);
}
/* kl_div's derivatives in x: -y, and 0 (linear in x) */
FL_INLINE void fl__kl_div_vderivs(const fl_vf *y, fl_vf *dloss, fl_vf *d2loss, const int n)
{
    FL__EACH(j, n) {
        dloss[j] = -y[j];
        d2loss[j] = (fl_vf){0};
    }
}

#if defined(FL__HAVE_LOG_TAB_F64)
/* kl_div's terms where the level has the table log in double (AVX-512): every lane through the double path,
 * loss = y (log y - x) in double, rounded once (within 2.2 ulp of double of log y: the loss within a float32
 * half-ulp plus 2^-50 of its terms however log y and x cancel). A step with an odd y (negative, +-0, inf, nan)
 * takes fl__kl_div_vterms_f64, whose normal lanes are the same operations: the same bits wherever a lane falls.
 * Against the float pair with the double path for the near lanes (the AVX2 form below), 65,536 x 1,000 float32
 * batchmean, 2 threads, this Intel Xeon: unrelated p and q 23.4 -> 25.6 ms, log q = log p + N(0, 1e-2 .. 1e-4)
 * (most lanes near) 63-66 -> 25-26 ms; 4,096 x 32,000: 48.1 -> 52.0, 132-137 -> 51-53 ms (one process, the two
 * builds alternating). Where p and q are close -- the usual reason to take a KL -- the float path only found the
 * lanes the double path then did again. fl__kl_div_vterms: the terms in double, which the reductions sum as they
 * are (fl_kl_div_velemd below): no rounding to float and widening back a term, 25% fewer instructions, and the
 * sum's accuracy (rounded terms left it 7-31 float32 eps off where q is close to p); batchmean, 2 threads,
 * unrelated or close: 4,096 x 32,000 46.4-47.8 -> 37.2-38.3 ms, 65,536 x 1,000 23.4 -> 18.9, 1,000,000 x 10
 * 3.4-3.5 -> 2.8 (the two builds alternating in one process). With log y - x from fl__kl_div_vdiff (one FMA
 * a vector of doubles fewer), the same where q is close to p on the AMD EPYC Zen 4: 23.7 -> 22.2, 47.4 -> 44.7,
 * 3.73 -> 3.51 ms (the reductions' float form takes the unrelated rows there); its log1p a degree lower (to an
 * absolute 2^-55.6), 22.4 -> 21.6, 44.4 -> 43.0, 3.45 -> 3.36 ms. */
FL_INLINE void fl__kl_div_vterms(const fl_vf *x, const fl_vf *y, fl_vd *t, const int n)
{
    __mmask16 odd = 0;
    FL__EACH(j, n) odd |= _mm512_fpclass_ps_mask((__m512)y[j], 0xdf); /* all but +denormal, +normal */
    if (__builtin_expect(odd != 0, 0))
        fl__kl_div_vterms_f64(x, y, t, n);
    else
        FL__EACH(j, n) {
            fl_vd xd[2];
            fl__vf_widen(x[j], &xd[0], &xd[1]);
            fl__vf_widen(y[j], &t[j], &t[n + j]);
            fl_vd d[2] = {t[j], t[n + j]};
            fl__kl_div_vdiff(d, xd, 2); /* a float subnormal is a double normal */
            t[j] *= d[0];
            t[n + j] *= d[1];
        }
}
#elif defined(FL__HAVE_LOG_FF)
/* fl_kl_div_velem elsewhere (AVX2): loss = y (log y - x) from log y as a float pair (fl__vlog_ff_f32_n, within
 * FL__VLOG_FF_ERR), loss = fma(y, hi - x, y lo). Where d = log y - x is at least FL_KL_DIV_NEAR: hi - x is within
 * half an ulp of itself times 1.04 (it is exact where x is within a factor 2 of hi, the usual case), y lo below
 * 0.04 of the loss, log y's error below 0.43 half-ulps of d, the FMA's rounding one: the loss within 2.5 half-ulps
 * (1.25 float32 eps) of the exact value (the double path: one rounding). Lanes with y = 0: the log of 1 is 0 + 0,
 * and the loss fma(0, -x, 0) is 0, or nan for an infinite x, as the element form. The rest go through
 * fl__kl_div_velem_f64, a vector at a time, taken lane by lane: a y that is negative (or -0), subnormal, inf or
 * nan, and a difference below FL_KL_DIV_NEAR (log p ~ log q; the sweep's random rows of 1000 classes: 0.2% of the
 * elements). A lane's loss depends on its own x and y alone, not on its neighbours': the same bits wherever it
 * falls. 65,536 x 1,000 float32 (the sweep's rows), batchmean: 1 thread 179 -> 80 ms, 2 threads 76 -> 42 ms. */
#define FL_KL_DIV_NEAR 0x1p-9f
/* A lane mask and its operations (AVX2; AVX-512 takes the double path above). ODD: y not a positive normal
 * finite float; SPECIAL: the same but +0. */
typedef fl_vfi fl__kl_mask;
typedef uint32_t fl__kl_vu __attribute__((vector_size(FL_VBYTES)));
#define FL__KL_CLASSIFY(v, odd, special) \
    ((odd) = ~(fl_vfi)((fl__kl_vu)((fl_vfi)(v) - 0x00800000) < 0x7f000000u), (special) = (odd) & ((fl_vfi)(v) != 0))
#define FL__KL_NEAR(d) ((fl_vfi)((fl_vf)((fl_vfi)(d) & 0x7fffffff) < FL_KL_DIV_NEAR))
#if defined(__AVX2__) && FL_VF_N == 8
#define FL__KL_SEL(m, a, b) ((fl_vf)_mm256_blendv_ps((__m256)(b), (__m256)(a), (__m256)(m))) /* one instruction */
#else
#define FL__KL_SEL(m, a, b) fl__vf_blend((m), (a), (b))
#endif
#define FL__KL_ANY(m) fl__any_lane(m)
#define FL__KL_NONE ((fl_vfi){0})
/* the float pair's losses of n vectors and their lanes for the double path (slow[j]); whether there are any */
FL_INLINE int fl__kl_div_ff(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl__kl_mask *slow, const int n)
{
    fl_vf arg[FL__XU], hi[FL__XU], lo[FL__XU];
    fl__kl_mask any = FL__KL_NONE;
    FL__EACH(j, n) {
        fl__kl_mask odd;
        FL__KL_CLASSIFY(y[j], odd, slow[j]);
        arg[j] = FL__KL_SEL(odd, (fl_vf){0} + 1.0f, y[j]);
    }
    fl__vlog_ff_f32_n(arg, hi, lo, n);
    FL__EACH(j, n) {
        const fl_vf d1 = hi[j] - x[j], d = d1 + lo[j];
        /* slow: a y not normal (but +0: the log of 1 is 0 + 0, loss = fma(0, -x, 0), 0 for a finite x, else nan,
         * as the element form), or a difference below FL_KL_DIV_NEAR (with y = +0 too: the element form's value
         * is the same +0) */
        slow[j] |= FL__KL_NEAR(d);
        any |= slow[j];
        loss[j] = FL__VFMA(y[j], d1, y[j] * lo[j]);
    }
    return FL__KL_ANY(any);
}
/* Where all the vectors but one at most have a slow lane (p close to q: most of their lanes are), all n go
 * through the double path in lockstep: its chains (a division each) overlap, where one vector at a time waited
 * on each (256 x 1,000 float32 in L2, 1 thread, log q = log p + N(0, 1e-4): AVX2 0.78-0.80 -> 0.65-0.67 ms,
 * AVX-512 0.55-0.58 -> 0.50-0.53; with 15% of the lanes near, AVX2 0.68 -> 0.63; rows of unrelated p and q, 0.2%
 * near, unchanged). Each lane's value is the same either way. One test a call, not one a vector: 2-3% faster. */
FL_INLINE void fl_kl_div_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                               float param, int flag, const int n)
{
    (void)param, (void)flag;
    fl__kl_mask slow[FL__XU];
    const int any = fl__kl_div_ff(x, y, loss, slow, n);
    fl__kl_div_vderivs(y, dloss, d2loss, n);
    if (__builtin_expect(any, 0)) {
        int n_slow = 0;
        FL__EACH(j, n) n_slow += FL__KL_ANY(slow[j]);
        if (n_slow >= n - 1) {
            fl_vf exact[FL__XU];
            fl__kl_div_velem_f64(x, y, exact, n);
            FL__EACH(j, n) loss[j] = FL__KL_SEL(slow[j], exact[j], loss[j]);
        } else {
            FL__EACH(j, n) if (FL__KL_ANY(slow[j])) {
                fl_vf exact;
                fl__kl_div_velem_f64(&x[j], &y[j], &exact, 1);
                loss[j] = FL__KL_SEL(slow[j], exact, loss[j]);
            }
        }
    }
}
/* The reductions' terms (fl_kl_div_velemd's double form) are the double path's: the float pair's losses,
 * rounded to float and widened, were within 1.25 eps of each term, not of their sum where the terms cancel (a
 * sum of rows of either sign 2e6 eps off its ~0; test_kl_div_sums_of_float_terms). Their fast form is the float
 * form (fl__kl_div_vfloat below), taken where its bounds show it is within an eps of the sum. */
#define fl__kl_div_vterms fl__kl_div_vterms_f64
#undef FL__KL_SEL
#undef FL__KL_CLASSIFY
#undef FL__KL_NEAR
#undef FL__KL_ANY
#undef FL__KL_NONE
#define FL__KL_DIV_OWN_VELEM 1
#else
#define fl__kl_div_vterms fl__kl_div_vterms_f64
#endif
#ifdef FL__HAVE_LOG_TAB
/* kl_div's float form (its reductions' terms where FL_FLOAT_TERMS_EPS keeps them, see FL_FLOAT_TERMS_BLOCK):
 *   log y = k ln2 + log m  (y = 2^k m, m in [0.708, 1.416): the table log's split, fl__vlog_tab_parts_f32_n),
 *   term = y ((k ln2 + lm) - x) in double,  lm = logc_i + log1p(z) in float (|lm| <= 0.35, |z| <= 0.057),
 * so that the float part is log m alone, not |log y| (~7 where p spreads over 1,000 classes) against a row's KL
 * (~1 for unrelated p and q). lm is within (|lm| + 1.873 |z| + 2^-11) 2^-24 of log m: its rounding (half an ulp),
 * the rest measured over every float m (tools/vmath/kl_div_bound.c: logc_i within 2^-38 of -log invc_i, z's
 * rounding, the polynomial's); the bound err = y (|lm| + 2 |z| + 2^-11) in units of 2^-24 also covers k ln2's
 * double rounding (below 2^-22 units). Unrelated rows of 1,000 classes: ~0.25 2^-24 of bound a row against
 * 2^-23 KL, ~8x inside; rows with q close to p (KL ~1e-6) fail their block's probe and take the double form. A
 * step with a y not a positive normal float or +0 takes fl__kl_div_vterms (err 0): with +0 too, one-hot or
 * sparse p took 2x as long at AVX2 (65,536 x 1,000, 2 threads: 61 against the float pair's 29 ms before). The
 * derivatives: -y, 0, as ever. */
typedef uint32_t fl__kl_u32v __attribute__((vector_size(FL_VBYTES)));
FL_INLINE void fl__kl_div_vfloat(const fl_vf *x, const fl_vf *y, fl_vd *t, fl_vf *err, const int n)
{
    fl_vfi special = (fl_vfi){0};
    fl_vf arg[FL__XU];
    FL__EACH(j, n) { /* y = +0: the log of 1 (k = lm = z = 0), a term 0 (-x) = 0, nan for an infinite x (as ever) */
        const fl_vfi odd = (fl_vfi)((fl__kl_u32v)((fl_vfi)y[j] - 0x00800000) >= 0x7f000000u);
        special |= odd & ((fl_vfi)y[j] != 0);
        arg[j] = fl__vf_blend(odd, (fl_vf){0} + 1.0f, y[j]);
    }
    if (__builtin_expect(fl__any_lane(special), 0)) {
        fl__kl_div_vterms(x, y, t, n);
        FL__EACH(j, n) err[j] = (fl_vf){0};
        return;
    }
    fl_vf k[FL__XU], lm[FL__XU], z[FL__XU];
    fl__vlog_tab_parts_f32_n(arg, k, lm, z, n);
    FL__EACH(j, n) {
        fl_vd xd[2], yd[2], kd[2], ld[2];
        fl__vf_widen(x[j], &xd[0], &xd[1]);
        fl__vf_widen(y[j], &yd[0], &yd[1]);
        fl__vf_widen(k[j], &kd[0], &kd[1]);
        fl__vf_widen(lm[j], &ld[0], &ld[1]);
        t[j] = yd[0] * (FL__VDFMA(kd[0], (fl_vd){0} + 0x1.62e42fefa39efp-1, ld[0]) - xd[0]);
        t[n + j] = yd[1] * (FL__VDFMA(kd[1], (fl_vd){0} + 0x1.62e42fefa39efp-1, ld[1]) - xd[1]);
        const fl_vf alm = (fl_vf)((fl_vfi)lm[j] & 0x7fffffff), az = (fl_vf)((fl_vfi)z[j] & 0x7fffffff);
        err[j] = y[j] * FL__VFMA(az, (fl_vf){0} + 2.0f, alm + 0x1p-11f);
    }
}
#define FL_KL_DIV_FLOATS 1
#else
#define FL_KL_DIV_FLOATS 0
#endif
/* the fl_velemd_fn: the terms in double, summed as they are by the reductions; the float form where err */
FL_INLINE void fl_kl_div_velemd(const fl_vf *x, const fl_vf *y, fl_vd *loss, fl_vf *dloss, fl_vf *d2loss,
                                float param, int flag, fl_vf *err, const int n)
{
    (void)param, (void)flag;
#if FL_KL_DIV_FLOATS
    if (err) fl__kl_div_vfloat(x, y, loss, err, n);
    else
#else
    (void)err;
#endif
        fl__kl_div_vterms(x, y, loss, n);
    fl__kl_div_vderivs(y, dloss, d2loss, n);
}
#ifndef FL__KL_DIV_OWN_VELEM /* AVX-512 and the generic level: the same terms, each rounded once to float */
FL_INLINE void fl_kl_div_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                               float param, int flag, const int n)
{
    (void)param, (void)flag;
    fl_vd t[2 * FL__XU];
    fl__kl_div_vterms(x, y, t, n);
    FL__EACH(j, n) loss[j] = fl__vf_narrow(t[j], t[n + j]);
    fl__kl_div_vderivs(y, dloss, d2loss, n);
}
#endif
#undef FL__KL_DIV_OWN_VELEM
#define FL_KL_DIV_VELEMD fl_kl_div_velemd
#define FL_KL_DIV_VELEM fl_kl_div_velem
#else
#define FL_KL_DIV_VELEM NULL
#define FL_KL_DIV_VELEMD NULL
#define FL_KL_DIV_FLOATS 0
#endif

#define FL_TEMPLATE "distributions_tpl.h"
#include "each_dtype.h"
