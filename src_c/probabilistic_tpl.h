/* probabilistic_tpl.h -- logsumexp, softmax, log_softmax, cross_entropy and nll_loss for one input dtype.
 * Included by probabilistic.c through each_dtype.h (S, T, FL_LD, FL_ST, FL_T, FL_TC: see there). The row
 * primitives of vmath.h by dtype:
 *   T_EXP     exp in T;  T_SUM_EXP(x, n, shift, next): sum of exp(x[j] - shift) in double, prefetching next[0..n);
 *   T_MAX(x, n): max, nan-propagating
 *   T_EXP_SCALED(x, n, shift, scale, out): out[j] = scale * exp(x[j] - shift), x[j] <= shift;
 *   T_EXP_SCALED_NT: the same with non-temporal stores (outputs of FL_STREAM_BYTES and more)
 *   T_TILE    rows per tile of the few-classes path; T_TILE_STATS(buf, n, m, s): their max and sum of exps;
 *   T_TILE_LOAD(buf, x, stride, n, tr): the tile transposed into buf where the level has a fast way (else 0)
 */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include probabilistic_tpl.h through each_dtype.h"
#endif
#define T_EXP FL_TC(fl_exp)
#define T_SUM_EXP FL_T(fl_sum_exp_shifted)
#define T_MAX FL_T(fl_max)
#define T_EXP_SCALED FL_T(fl_exp_shifted_scaled)
#define T_EXP_SCALED_NT FL_T(fl_exp_shifted_scaled_nt)
#define T_TILE (sizeof(T) == sizeof(float) ? FL_TILE_F32 : FL_TILE_F64)
#define T_TILE_STATS FL_TC(fl_tile_stats_ex)
#define T_SUM_EXP_D FL_T(fl_sum_exp_diff_shifted)
#define T_SUM_EXP_MAX FL_T(fl_sum_exp_max_shifted)
#define T_MAX_COUNT FL_T(fl_max_count)
#define T_TILE_LOAD FL_T(fl_tile_load)
/* the class kernels' gradient is stored in the logits' half type (FL_ST) rather than in float: half logits
 * whose caller asked for it (a->grad_half); float32 and float64 logits always have it in T */
#define FL_GRAD_HALF(a) ((FL_ST == FL_ST_F16 || FL_ST == FL_ST_BF16) && (a)->grad && (a)->grad_half)

/* The max m and s = sum_j exp(x_j - m) of one row, reading it from memory once: chunks of FL_CHUNK elements
 * stay in L1 while their max and then their sum of exps are taken, and s is rescaled when the max grows.
 * Edge cases, as scipy's logsumexp: a nan anywhere gives m = nan; m = -inf (all -inf, or n = 0) gives s = 0;
 * m = +inf leaves s unused. What the class kernels ask for more (constant flags: see fl_tile_stats):
 *   t >= 0 (a target in [0, n)): *so = the sum over j != t alone (the chunk holding t is summed in two parts),
 *       to full relative accuracy however small it is; s = so + exp(x_t - m) in double. Where x_t is the max,
 *       the loss log(s) = log1p(so) then keeps every bit of a loss of 1e-13 (s itself would round it away);
 *   want_diff: *diff = sum_j (x_j - m), taken in the pass of the exps (label smoothing);
 *   want_rank: *rank = #{j : !(x_j <= x_t)}, counted in the pass of the max (top-k; n where x_t is nan).
 * Float data, after the first chunk (m finite), a chunk without the target: one pass instead of two, the max
 * (and rank) taken while the exps are summed against the max so far (T_SUM_EXP_MAX). Where the chunk's max cm is
 * above m (the max of random rows rises in ~2 of 16 chunks), by at most FL_REBASE, the sum is rescaled by
 * exp(m - cm) in double as the pass of two would have; where it is further above, or the sum nan (a nan, an
 * inf), the chunk is taken again in two passes, which handles them. Half data is read once instead of twice:
 * the max pass was ~5 of the ~29 instructions a vector (callgrind, bf16 4096 x 32000) and could not overlap the
 * exps' FMAs, in a loop of its own. The same bits where the max does not rise (the chunk's sum is the same
 * call with the same shift). */
/* Rows of FL_FAR_ROW chunks and more (float32 and float64 data) prefetch their next chunk into L2 only
 * (prefetcht1), not L1: Intel Xeon (AVX-512), 2 threads, 30 ms idle before each call, interleaved processes,
 * medians: logsumexp 4,096 x 32,000 float32 26.9 -> 21.8 ms, float64 70.0 -> 57.2, cross_entropy 23.7 -> 22.5,
 * 1,024 x 128,000 27.2 -> 21.7. Not for shorter rows (cross_entropy float32 with it for every chunk: rows of
 * 1,000 6% slower, 4,000 4%, 8,000 5%) nor for half data (bfloat16 4,096 x 32,000: 13.4 -> 14.7 ms with it; its
 * exps, not memory, are the limit).
 * Why L1 prefetches of a whole 8-16 KB chunk ahead lose on long rows is not established (a guess: they hold the
 * L1's fill buffers, which the loop's own loads then wait for). */
#define FL_FAR_ROW 4
#define FL_REBASE 64.0 /* exp(64) * 4, the exps added in float: far from overflow */
FL_INLINE void FL_T(row_stats)(const S *FL_RESTRICT x, fl_index n, fl_index t, const int want_diff,
                               const int want_rank, double *m_out, double *s_out, double *so_out, double *diff_out,
                               double *rank_out)
{
    T m = -INFINITY;
    double s = 0.0, d = 0.0;
    fl_index done = 0; /* elements in d */
    long above = 0;
    const T xt = t >= 0 ? FL_LD(x[t]) : (T)0;
    const int count = want_rank && xt == xt;
    int has_nan = 0;
    const int far = FL_ST != FL_ST_F16 && FL_ST != FL_ST_BF16 && n >= FL_FAR_ROW * FL_CHUNK;
    for (fl_index j0 = 0; j0 < n; j0 += FL_CHUNK) {
        const fl_index len = n - j0 < FL_CHUNK ? n - j0 : FL_CHUNK;
        if (sizeof(T) == sizeof(float) && !has_nan && isfinite(m) && !(t >= j0 && t < j0 + len)) {
            T fm;
            double dc = 0.0;
            const long above_before = above;
            const double sc = T_SUM_EXP_MAX(x + j0, len, m, x + j0 + len, want_diff ? &dc : NULL, &fm, xt,
                                            count ? &above : NULL, far);
            if (sc == sc && (double)fm - (double)m <= FL_REBASE) {
                if (fm > m) { /* the sum so far and this chunk's, both against m, moved to the new max */
                    s = (s + sc) * exp((double)m - (double)fm);
                    d = (d + dc) - ((double)fm - (double)m) * (double)(done + len);
                    m = fm;
                } else {
                    s += sc;
                    d += dc;
                }
                done += len;
                continue;
            }
            above = above_before; /* counted again below */
        }
        const T cm = count ? T_MAX_COUNT(x + j0, len, xt, &above) : T_MAX(x + j0, len);
        if (cm != cm || has_nan) { /* nan: the result is nan; only a rank still needs the rest of the row */
            has_nan = 1;
            if (!count) break;
            continue;
        }
        if (cm > m) {
            /* m = -inf before: nothing summed yet (and -inf - -inf would be nan); the elements before were
             * all -inf: their differences too */
            s = (m == -INFINITY) ? 0.0 : s * exp((double)m - (double)cm);
            d = (m == -INFINITY) ? (done ? -(double)INFINITY : 0.0) : d - ((double)cm - (double)m) * (double)done;
            m = cm;
        }
        double *dp = want_diff ? &d : NULL;
        /* the next chunk (past the row's end: where the next row of a C-contiguous array starts) */
        if (isfinite(m)) {
            if (t >= j0 && t < j0 + len) {
                s += T_SUM_EXP_D(x + j0, t - j0, m, x + t, dp, far);
                s += T_SUM_EXP_D(x + t + 1, j0 + len - t - 1, m, x + j0 + len, dp, far);
            } else {
                s += T_SUM_EXP_D(x + j0, len, m, x + j0 + len, dp, far);
            }
        }
        done += len - (t >= j0 && t < j0 + len);
    }
    if (want_rank) *rank_out = count ? (double)above : (double)n;
    if (has_nan) {
        *m_out = *s_out = *so_out = NAN;
        if (want_diff) *diff_out = NAN;
        return;
    }
    *m_out = m;
    *so_out = s;
    *s_out = t >= 0 && isfinite(m) ? s + exp((double)xt - (double)m) : s;
    if (want_diff) *diff_out = t >= 0 ? d + ((double)xt - (double)m) : d;
}

/* The sum over j != t of exp(x_j - m) for a row whose max m is its target's logit, every difference exact
 * (fl_sum_exp_exact_f64: the row in double, chunk by chunk). Taken where that sum is below FL_TINY_SO: there the
 * differences are all below -6.9, and rounded (in the float pass: to float) they would cost up to |x_j - m|
 * 2^-24 of each term (8-16 float eps of a loss of 1e-8 to 1e-28). Such rows are rare in random data and common
 * in a confident model's: a second, exact read of the row from cache. */
#define FL_TINY_SO 0x1p-10
static double FL_T(others_sum_exact)(const S *FL_RESTRICT x, fl_index n, fl_index t, double m)
{
    double buf[FL_CHUNK], s = 0.0, c = 0.0;
    for (fl_index j0 = 0; j0 < n; j0 += FL_CHUNK) {
        const fl_index len = n - j0 < FL_CHUNK ? n - j0 : FL_CHUNK;
        for (fl_index k = 0; k < len; k++) buf[k] = (double)FL_LD(x[j0 + k]);
        if (t >= j0 && t < j0 + len) buf[t - j0] = -INFINITY;
        const double part = fl_sum_exp_exact_f64(buf, len, m), u = s + part, ub = u - s;
        c += (s - (u - ub)) + (part - ub); /* the chunks' sums added with TwoSum too */
        s = u;
    }
    return s + c;
}

/* The stats of g consecutive rows (row r at x + r * stride) into st: m[r], s[r] (and so, diff, rank on
 * request) as row_stats, and lg[r] = log s[r] (nan for rows with +inf, only -inf, or nan: as torch and scipy,
 * every entry of their log_softmax, softmax and cross-entropy is nan). log_softmax_j = (x_j - m) - lg: the max is
 * subtracted first, so that log s is not lost against a huge m (m + log s would round it away for |m| ~ 1e38).
 * Few classes (n <= FL_SMALL_C): tiles of T_TILE rows are transposed into a small buffer so that each vector
 * lane works on one row (one row of 10 classes would fill a vector badly); many classes: row by row, chunked.
 * Then log(s) for the whole group. target (or NULL): the group's targets; those equal to ignore (and outside
 * [0, n)) are no target. */
FL_INLINE void FL_T(group_stats_of)(const S *FL_RESTRICT x, fl_index g, fl_index n, fl_index stride,
                                    const int64_t *target, int64_t ignore, const int want_diff, const int want_rank,
                                    const int want_ex, fl_group_stats *FL_RESTRICT st)
{
#define FL__TARGET_OF(r) (target && target[r] != ignore && target[r] >= 0 && target[r] < n ? (fl_index)target[r] : -1)
    double *FL_RESTRICT m = st->m, *FL_RESTRICT s = st->s, *FL_RESTRICT so = st->so, *FL_RESTRICT lg = st->lg;
    if (n == 0) { /* no classes: the log of an empty sum, -inf (and the tile buffer would be read unwritten) */
        for (fl_index r = 0; r < g; r++) {
            m[r] = -INFINITY;
            s[r] = so[r] = 0.0;
            if (want_diff) st->diff[r] = 0.0;
            if (want_rank) st->rank[r] = 0.0;
        }
    } else if (n <= FL_SMALL_C) {
        for (fl_index r0 = 0; r0 < g; r0 += T_TILE) {
            const fl_index tr = g - r0 < T_TILE ? g - r0 : T_TILE;
            T buf[FL_SMALL_C * T_TILE];
            int32_t tg[T_TILE];
            double tm[T_TILE], ts[T_TILE], td[T_TILE], tk[T_TILE], tt[T_TILE];
            if (!T_TILE_LOAD(buf, x + r0 * stride, stride, n, tr))
                for (fl_index r = 0; r < T_TILE; r++) {
                    const S *xr = x + (r0 + (r < tr ? r : 0)) * stride;  /* a short tile repeats its first row */
                    for (fl_index c = 0; c < n; c++) buf[c * T_TILE + r] = FL_LD(xr[c]);
                }
            if (target) {
                /* one unsigned compare for [0, n): a loop that vectorises (the short tile's rows past tr: -1) */
                for (fl_index r = 0; r < T_TILE; r++) {
                    const int64_t t = target[r0 + (r < tr ? r : 0)];
                    tg[r] = (uint64_t)t < (uint64_t)n && t != ignore && r < tr ? (int32_t)t : -1;
                }
            }
            T_TILE_STATS(buf, n, target ? tg : NULL, want_diff, want_rank, tm, ts, td, tk, tt,
                         want_ex ? st->ex + r0 * n : NULL, st->sh + r0, st->xt + r0);
            for (fl_index r = 0; r < tr; r++) {
                const fl_index t = target ? tg[r] : -1;
                m[r0 + r] = tm[r];
                so[r0 + r] = ts[r];
                s[r0 + r] = t >= 0 && isfinite(tm[r]) ? ts[r] + tt[r] : ts[r];
                if (want_diff) st->diff[r0 + r] = td[r];
                if (want_rank) st->rank[r0 + r] = t >= 0 && buf[t * T_TILE + r] == buf[t * T_TILE + r] ? tk[r] : (double)n;
            }
        }
    } else {
        for (fl_index r = 0; r < g; r++)
            FL_T(row_stats)(x + r * stride, n, FL__TARGET_OF(r), want_diff, want_rank, &m[r], &s[r], &so[r],
                            &st->diff[r], &st->rank[r]);
    }
    for (fl_index r = 0; r < g; r++) lg[r] = fl_log_f64(s[r]);
    for (fl_index r = 0; r < g; r++) lg[r] = isfinite(m[r]) ? lg[r] : (double)NAN;
    /* Tiny losses: where x_t is the max, -log p_t = (m - x_t) + log s = log(1 + so); where so is below FL_TINY_SO
     * it is summed again exactly and log s taken as log1p(so), so that the loss formula of every kernel keeps
     * its last bits (above, log(1 + so) in double is within 2^-43 of it). Rare rows: a branch per row is cheap. */
    if (target)
        for (fl_index r = 0; r < g; r++) {
            if (!(so[r] < FL_TINY_SO)) continue;
            const fl_index t = FL__TARGET_OF(r);
            if (t >= 0 && isfinite(m[r]) && (double)FL_LD(x[r * stride + t]) == m[r]) {
                so[r] = FL_T(others_sum_exact)(x + r * stride, n, t, m[r]);
                s[r] = so[r] + 1.0;
                lg[r] = fl_log1p_f64(so[r]);
            }
        }
#undef FL__TARGET_OF
}

/* One out-of-line function per use (see FL_BLOCK_FN): the primitives, cross-entropy, with label smoothing,
 * evaluate (top-k ranks). */
FL_BLOCK_FN void FL_T(group_stats)(const S *x, fl_index g, fl_index n, fl_index stride, fl_group_stats *st)
{
    FL_T(group_stats_of)(x, g, n, stride, NULL, 0, 0, 0, 0, st);
}
/* (ex: the terms too, for ce_group_grad_hess; without smoothing) */
FL_BLOCK_FN void FL_T(group_stats_ce)(const S *x, fl_index g, fl_index n, fl_index stride, const int64_t *target,
                                      int64_t ignore, int smoothing, int ex, fl_group_stats *st)
{
    if (smoothing) FL_T(group_stats_of)(x, g, n, stride, target, ignore, 1, 0, 0, st);
    else if (ex) FL_T(group_stats_of)(x, g, n, stride, target, ignore, 0, 0, 1, st);
    else FL_T(group_stats_of)(x, g, n, stride, target, ignore, 0, 0, 0, st);
}
/* (ex without targets: softmax's tiles) */
FL_BLOCK_FN void FL_T(group_stats_ex)(const S *x, fl_index g, fl_index n, fl_index stride, fl_group_stats *st)
{
    FL_T(group_stats_of)(x, g, n, stride, NULL, 0, 0, 0, 1, st);
}
FL_BLOCK_FN void FL_T(group_stats_rank)(const S *x, fl_index g, fl_index n, fl_index stride, const int64_t *target,
                                        int64_t ignore, fl_group_stats *st)
{
    FL_T(group_stats_of)(x, g, n, stride, target, ignore, 0, 1, 0, st);
}

/* Rows per group: a group's rows stay in cache between their stats and the pass that writes outputs. */
static inline fl_index FL_T(group_rows)(fl_index n)
{
    fl_index g = FL_GROUP_ELEMENTS / (n > 0 ? n : 1);
    return g < 1 ? 1 : g > FL_GROUP_MAX ? FL_GROUP_MAX : g;
}

static void FL_T(fill)(T *FL_RESTRICT out, fl_index n, T value)
{
    for (fl_index j = 0; j < n; j++) out[j] = value;
}

/* The differences x_j - (T)m of g rows (row r at x + r * stride, its max m[r]) into d[r * n + j], as the row
 * exps form them (the same bits); rows without a finite max get 0 (their outputs are written over). The max's
 * finiteness tested once a row: the loop vectorises. */
static inline void FL_T(group_diffs)(const S *FL_RESTRICT x, fl_index g, fl_index n, fl_index stride,
                                     const double *FL_RESTRICT m, T *FL_RESTRICT d)
{
    for (fl_index r = 0; r < g; r++) {
        const S *FL_RESTRICT xr = x + r * stride;
        T *FL_RESTRICT dr = d + r * n;
        const T mr = (T)m[r];
        if (isfinite(m[r]))
            for (fl_index j = 0; j < n; j++) dr[j] = FL_LD(xr[j]) - mr;
        else
            for (fl_index j = 0; j < n; j++) dr[j] = (T)0;
    }
}

/* ---- logsumexp, softmax, log_softmax ------------------------------------------------------------------ */

static void FL_T(logsumexp_block)(const fl_rows_args *a, fl_index r0, fl_index r1)
{
    const S *x = (const S *)a->x;
    T *out = (T *)a->out;
    const fl_index gr = FL_T(group_rows)(a->n_cols);
    fl_group_stats st;
    const double *m = st.m, *lg = st.lg;
    for (fl_index g0 = r0; g0 < r1; g0 += gr) {
        const fl_index g = r1 - g0 < gr ? r1 - g0 : gr;
        FL_T(group_stats)(x + g0 * a->row_stride, g, a->n_cols, a->row_stride, &st);
        /* scipy semantics at the edges: m itself when it is not finite (+inf, -inf, nan) */
        for (fl_index r = 0; r < g; r++) out[g0 + r] = (T)(isfinite(m[r]) ? m[r] + lg[r] : m[r]);
    }
}

/* Whether an output of count elements at out (NULL: none) is written with non-temporal stores: one of
 * FL_STREAM_BYTES or more (larger than the caches: a plain store would first read each line it writes) in
 * memory already in use. Into a new array's untouched pages, plain stores: the OS zeroes each page through
 * the cache as it is first written, and plain stores then hit its lines, where non-temporal ones go around them
 * (Intel Xeon, AVX-512, 2 threads, cross_entropy_and_grad 4,096 x 32,000 float32 into a new gradient: 92-94 ms
 * non-temporal, 78 ms plain; into a held one 39 and 63 ms). */
static inline int FL_T(stream_out)(const void *out, fl_index count)
{
    const fl_index bytes = count * (fl_index)sizeof(T);
    return out && bytes >= FL_STREAM_BYTES && !fl_pages_untouched(out, (long)bytes);
}

/* Few float classes (where the level stores tiles back into rows, and groups of at least a vector, whose exps
 * are the vector exp either way): float_tiles, also ce_tiles' condition. softmax by tiles of FL_TILE_F32 rows, a row a lane, from the exps the stats
 * kept, each times its row's (T)(1 / s) and stored back into rows by fl_tile_store_f32 (the row loop's bits),
 * instead of the group's exps taken again and scaled a row at a time. */
static inline int FL_T(float_tiles)(fl_index n, fl_index g)
{
    return FL_TILE_STORE_F32 && sizeof(T) == sizeof(float) && n >= 1 && n <= FL_SMALL_C && g * n >= FL_VF_N;
}
static inline void FL_T(softmax_group_tiles)(T *OUT, fl_index n, fl_index g, const fl_group_stats *FL_RESTRICT st)
{
    enum { L = FL_TILE_F32 };
    float *const out = (float *)(void *)OUT;
    for (fl_index r0 = 0; r0 < g; r0 += L) {
        const fl_index tr = g - r0 < L ? g - r0 : L;
        float ob[FL_SMALL_C * L], sc[L];
        for (int r = 0; r < L; r++) sc[r] = (float)(1.0 / st->s[r0 + (r < tr ? r : 0)]);
        const fl_vf scv = fl__vf_load(sc);
        for (fl_index c = 0; c < n; c++) fl__vf_store(ob + c * L, scv * fl__vf_load(st->ex + r0 * n + c * L));
        fl_tile_store_f32(out + r0 * n, ob, n, tr);
        for (fl_index r = 0; r < tr; r++) /* rows with a nan, or without a finite max: nan, as the row loop */
            if (st->lg[r0 + r] != st->lg[r0 + r]) FL_T(fill)(OUT + (r0 + r) * n, n, (T)NAN);
    }
}

/* softmax_j = exp(x_j - m) / s;  log_softmax_j = (x_j - m) - log s, in double and rounded once. */
static void FL_T(softmax_block)(const fl_rows_args *a, fl_index r0, fl_index r1, int log_space, int stream)
{
    const S *x = (const S *)a->x;
    T *out = (T *)a->out;
    const fl_index n = a->n_cols;
    const fl_index gr = FL_T(group_rows)(n);
    fl_group_stats st;
    const double *m = st.m, *s = st.s, *lg = st.lg;
    for (fl_index g0 = r0; g0 < r1; g0 += gr) {
        const fl_index g = r1 - g0 < gr ? r1 - g0 : gr;
        if (!log_space && FL_T(float_tiles)(n, g)) {
            FL_T(group_stats_ex)(x + g0 * a->row_stride, g, n, a->row_stride, &st);
            FL_T(softmax_group_tiles)(out + g0 * n, n, g, &st);
            continue;
        }
        FL_T(group_stats)(x + g0 * a->row_stride, g, n, a->row_stride, &st);
        if (!log_space && n <= FL_SMALL_C) {
            /* few classes: the group's exps by one vector call over its g * n differences (formed as the row
             * call forms them: the same bits), then each row scaled (a call a row of 10 classes was a vector
             * and a masked tail each) */
            T e[FL_GROUP_ELEMENTS];
            FL_T(group_diffs)(x + g0 * a->row_stride, g, n, a->row_stride, m, e);
            FL_TC(fl_exp_shifted_scaled)(e, g * n, (T)0, (T)1, e);
            for (fl_index r = 0; r < g; r++) {
                T *FL_RESTRICT oi = out + (g0 + r) * n;
                const T *FL_RESTRICT er = e + r * n;
                const T sc = (T)(1.0 / s[r]);
                if (lg[r] != lg[r]) FL_T(fill)(oi, n, (T)NAN);
                else for (fl_index j = 0; j < n; j++) oi[j] = sc * er[j];
            }
            continue;
        }
        for (fl_index r = 0; r < g; r++) {
            const S *FL_RESTRICT xi = x + (g0 + r) * a->row_stride;
            T *FL_RESTRICT oi = out + (g0 + r) * n;
            if (lg[r] != lg[r]) {
                FL_T(fill)(oi, n, (T)NAN);
            } else if (log_space) {
                const double mr = m[r], lr = lg[r];
                for (fl_index j = 0; j < n; j++) oi[j] = (T)(((double)FL_LD(xi[j]) - mr) - lr);
            } else {
                if (stream) T_EXP_SCALED_NT(xi, n, (T)m[r], (T)(1.0 / s[r]), oi);
                else T_EXP_SCALED(xi, n, (T)m[r], (T)(1.0 / s[r]), oi);
            }
        }
    }
}

#define FL_ROWS_KERNEL(NAME, SETUP, BLOCK_CALL)                                              \
    int FL_IMPL(FL_T(NAME))(fl_rows_args *a)                                                 \
    {                                                                                        \
        SETUP;                                                                               \
        const fl_index rpb = fl_rows_per_block(a->n_cols);                                   \
        const fl_index n_blocks = fl_n_blocks(a->n_rows, rpb);                               \
        const int nt = fl_threads_for(a->n_threads, a->n_rows * a->n_cols, n_blocks);        \
        FL_FOR_BLOCKS(b, n_blocks, nt, {                                                     \
            fl_index r0 = b * rpb, r1 = r0 + rpb < a->n_rows ? r0 + rpb : a->n_rows;         \
            BLOCK_CALL;                                                                      \
        });                                                                                  \
        return FL_OK;                                                                        \
    }

FL_ROWS_KERNEL(fl_logsumexp, (void)0, FL_T(logsumexp_block)(a, r0, r1))
FL_ROWS_KERNEL(fl_softmax, const int stream = FL_T(stream_out)(a->out, a->n_rows * a->n_cols),
               FL_T(softmax_block)(a, r0, r1, 0, stream))
FL_ROWS_KERNEL(fl_log_softmax, const int stream = FL_T(stream_out)(a->out, a->n_rows * a->n_cols),
               FL_T(softmax_block)(a, r0, r1, 1, stream))
#undef FL_ROWS_KERNEL

/* ---- cross_entropy with class-index targets ------------------------------------------------------------
 * Per row i with target t, class weights w (1 if none), W = sum_c w_c, smoothing e, C classes,
 * log-probabilities lp_c = x_c - L = (x_c - m) - log s:
 *   loss_i = sw_i * [ (1 - e) * w_t * (-lp_t) + (e / C) * sum_c w_c * (-lp_c) ]         (torch's formula)
 *   d loss_i / d x_k = sw_i * [ ((1 - e) w_t + e W / C) * p_k - (e / C) w_k - (1 - e) w_t [k == t] ]
 *   d^2 loss_i / d x_k^2 = sw_i * ((1 - e) w_t + e W / C) * p_k (1 - p_k)   (the Hessian's diagonal: the terms
 *   after p_k are constant in x)
 * The mean divides by sum_i sw_i * w_t over the rows not ignored. */

/* Rows of float exps four at a time in double lanes (AVX: the 128-bit float halves widen in one instruction):
 * rows of few classes spent ~120 instructions a row in these two loops (10 classes, callgrind), most of them
 * the scalar remainder of gcc's vectorised loop. */
#if defined(__AVX2__) && !defined(FL__CE_VEC4)
#define FL__CE_VEC4 1
#endif

/* The sum in double of a row's exps e_j (held in T), in lanes: 1 - p_j below is (sum - e_j) / sum, the others'
 * sum, which the row stats' s would round (it adds up to four float terms in float: s - 1 kept only 2^-24 of s). */
static inline double FL_T(exps_sum)(const T *FL_RESTRICT e, fl_index n)
{
    /* four sums, not FL_LANES: rows are short here (few classes), and zeroing 16 lanes cost more than the adds */
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    fl_index j = 0;
#ifdef FL__CE_VEC4
    if (sizeof(T) == sizeof(float)) { /* the four sums in the lanes of one vector: the same additions */
        __m256d acc = _mm256_setzero_pd();
        for (; j + 4 <= n; j += 4)
            acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm_loadu_ps((const float *)(const void *)(e + j))));
        double l[4];
        _mm256_storeu_pd(l, acc);
        s0 = l[0], s1 = l[1], s2 = l[2], s3 = l[3];
    }
#endif
    for (; j + 4 <= n; j += 4) {
        s0 += (double)e[j];
        s1 += (double)e[j + 1];
        s2 += (double)e[j + 2];
        s3 += (double)e[j + 3];
    }
    for (; j < n; j++) s0 += (double)e[j];
    return (s0 + s1) + (s2 + s3);
}

/* The gradient and Hessian-diagonal rows of one softmax row from its exps e_j = exp(x_j - m), which hess_row
 * holds on entry (T_EXP_SCALED with scale 1: e_j exactly as the gradient pass forms it). A = g times the row's
 * weight (the gradient is A p_j less terms constant in x), p_j = e_j / s:
 *   grad_j = scale * e_j        scale = (T)(A / s_stats): the product cross_entropy_and_grad forms, the same bits;
 *   hess_j = A p_j (1 - p_j) = A e_j (s - e_j) / s^2, in double with s = exps_sum: s - e_j is the others' sum,
 * without cancellation where p_j is near 1 (at the max e_j = 1, and s - 1 keeps the others' sum to double's
 * absolute precision; the caller puts the exact one in at the target). */
static inline void FL_T(grad_hess_of_exps)(fl_index n, double A, T scale, T *FL_RESTRICT grad_row,
                                           T *FL_RESTRICT hess_row)
{
    const double s = FL_T(exps_sum)(hess_row, n), k = A / (s * s);
    fl_index j = 0;
#ifdef FL__CE_VEC4
    if (sizeof(T) == sizeof(float)) { /* four at a time, the loop below's operations in its order: the same bits */
        const __m256d kv = _mm256_set1_pd(k), sv = _mm256_set1_pd(s);
        const __m128 scv = _mm_set1_ps((float)scale);
        for (; j + 4 <= n; j += 4) {
            const __m128 ef = _mm_loadu_ps((const float *)(const void *)(hess_row + j));
            const __m256d ed = _mm256_cvtps_pd(ef);
            _mm_storeu_ps((float *)(void *)(grad_row + j), _mm_mul_ps(scv, ef));
            _mm_storeu_ps((float *)(void *)(hess_row + j),
                          _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_mul_pd(kv, ed), _mm256_sub_pd(sv, ed))));
        }
    }
#endif
    for (; j < n; j++) {
        const T e = hess_row[j];
        grad_row[j] = scale * e;
        hess_row[j] = (T)(k * (double)e * (s - (double)e));
    }
}

/* A = d loss_i / d x_k over p_k: the row's gradient is A p_k less terms constant in x (see above), g = sw_i
 * times the reduction's scale, wt = w_t (1 without class weights), e the smoothing, eWn = e * W / C, taken once
 * (a division a row). */
static inline double FL_T(ce_grad_scale)(double g, double wt, double e, double eWn)
{
    return g * ((1.0 - e) * wt + eWn);
}

/* One row: returns loss_i / sw_i, writes the gradient row scaled by g (when grad_row is not NULL) and the
 * Hessian's diagonal scaled by g (when hess_row is not NULL too). st, r: the row's stats; diff
 * (sum_j (x_j - m)) is there when smoothing without class weights. pre: the row's exps are already in hess_row
 * (or grad_row, without a Hessian): see ce_group_exps. */
FL_INLINE double FL_T(ce_row)(const S *FL_RESTRICT x, fl_index n, const fl_group_stats *st, fl_index r,
                              fl_index t, const double *FL_RESTRICT w, double W, double eWn, double e, double g,
                              T *FL_RESTRICT grad_row, T *FL_RESTRICT hess_row, int stream, int pre)
{
    const double m = st->m[r], s = st->s[r], lg = st->lg[r], xt = (double)FL_LD(x[t]);
    const double wt = w ? w[t] : 1.0;
    double loss = (1.0 - e) * wt * ((m - xt) + lg); /* exact for tiny losses: see group_stats_of */
    if (e > 0.0) {
        /* sum_c w_c (L - x_c) = sum_c w_c (m - x_c) + W log s; without class weights the first sum is -diff,
         * taken in the pass of the exps; with them, the row is still in cache */
        double wx = 0.0;
        if (w) {
            double acc[FL_LANES] = {0};
            FL_LANE_LOOP(j, l, 0, n, acc[l] += w[j] * (m - (double)FL_LD(x[j])));
            wx = fl_lane_sum(acc);
        } else {
            wx = -st->diff[r];
        }
        loss += (e / (double)n) * (wx + W * lg);
    }
    if (grad_row) {
        if (lg != lg) {
            FL_T(fill)(grad_row, n, (T)NAN);
            if (hess_row) FL_T(fill)(hess_row, n, (T)NAN);
        } else {
            const double A = FL_T(ce_grad_scale)(g, wt, e, eWn);
            const T scale = (T)(A / s);
            if (hess_row) {
                if (!pre) T_EXP_SCALED(x, n, (T)m, (T)1, hess_row);
                FL_T(grad_hess_of_exps)(n, A, scale, grad_row, hess_row);
                /* p_t (1 - p_t) = so / (1 + so)^2 where x_t is the max: so is the others' sum, exact however small */
                if (xt == m) hess_row[t] = (T)(A * st->so[r] / ((1.0 + st->so[r]) * (1.0 + st->so[r])));
            }
            else if (pre) for (fl_index j = 0; j < n; j++) grad_row[j] = scale * grad_row[j];
            /* streamed only without smoothing: the smoothing term reads the row back */
            else if (stream && e == 0.0) T_EXP_SCALED_NT(x, n, (T)m, scale, grad_row);
            else T_EXP_SCALED(x, n, (T)m, scale, grad_row);
            if (e > 0.0) {
                const double c = g * e / (double)n;
                if (w) for (fl_index j = 0; j < n; j++) grad_row[j] = (T)((double)grad_row[j] - c * w[j]);
                else for (fl_index j = 0; j < n; j++) grad_row[j] = (T)((double)grad_row[j] - c);
            }
            /* p_t - 1 = -so / s: exact where p_t is within rounding of 1 (x_t the max) */
            if (e == 0.0 && xt == m) grad_row[t] = (T)(-g * wt * st->so[r] / s);
            else grad_row[t] = (T)((double)grad_row[t] - g * (1.0 - e) * wt);
        }
    }
    return loss;
}

/* The sum of the effective weights sw_i * w_t of rows [i0, i1) that count, and in *bad the first row whose
 * target is outside [0, n_cols) and not ignore_index (or -1). Branch-free over FL_LANES lanes: it vectorises. */
FL_BLOCK_FN double FL_T(check_targets_block)(const fl_class_args *args, fl_index i0, fl_index i1, fl_index *bad)
{
    const fl_class_args a = *args;
    const int64_t *FL_RESTRICT target = a.target;
    double acc[FL_LANES] = {0};
    int n_bad[FL_LANES] = {0};
    /* without weights, a loop of its own: with `weight ? weight[t] : 1` inside, gcc emits masked gathers of
     * the NULL page (microcode assists) */
    if (!a.weight && !a.sample_weight)
        FL_LANE_LOOP(i, l, i0, i1, {
            const int64_t t = target[i];
            const int counts = t != a.ignore_index, inside = t >= 0 && t < a.n_cols;
            n_bad[l] += counts & !inside;
            acc[l] += (double)(counts & inside);
        });
    else
        for (fl_index i = i0; i < i1; i++) {
            const int64_t t = target[i];
            const int counts = t != a.ignore_index, inside = t >= 0 && t < a.n_cols;
            n_bad[(i - i0) % FL_LANES] += counts & !inside;
            if (counts & inside)
                acc[(i - i0) % FL_LANES] += (a.weight ? a.weight[t] : 1.0) * (a.sample_weight ? a.sample_weight[i] : 1.0);
        }
    int any = 0;
    for (int l = 0; l < FL_LANES; l++) any |= n_bad[l];
    *bad = -1;
    if (any)
        for (fl_index i = i0; i < i1; i++)
            if (target[i] != a.ignore_index && (target[i] < 0 || target[i] >= a.n_cols)) {
                *bad = i;
                break;
            }
    return fl_lane_sum(acc);
}

/* Checks every target (the first bad one is reported, nothing is written) and returns the sum of the
 * effective weights sw_i * w_t of the rows that count; in blocks of rows, on the kernel's threads. */
static int FL_T(check_targets)(fl_class_args *a, double *weight_sum)
{
    const fl_index per_block = FL_BLOCK_ELEMENTS, n_blocks = fl_n_blocks(a->n_rows, per_block);
    const int nt = fl_threads_for(a->n_threads, a->n_rows, n_blocks);
    fl_partials part;
    if (!fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;
    FL_FOR_BLOCKS_READING(b, n_blocks, nt, {
        const fl_index i1 = (b + 1) * per_block < a->n_rows ? (b + 1) * per_block : a->n_rows;
        fl_index bad;
        part.p[2 * b] = FL_T(check_targets_block)(a, b * per_block, i1, &bad);
        part.p[2 * b + 1] = (double)bad;
    });
    int status = FL_OK;
    double den = 0.0;
    for (fl_index b = 0; b < n_blocks; b++) {
        if (part.p[2 * b + 1] >= 0.0) {
            a->bad_position = (fl_index)part.p[2 * b + 1];
            a->bad_value = a->target[a->bad_position];
            status = FL_ERR_INDEX;
            break;
        }
        den += part.p[2 * b];
    }
    fl_partials_free(&part);
    *weight_sum = den;
    return status;
}

/* The driver shared by the class-loss kernels: checks targets (or counts rows for probability targets),
 * runs ROW_LOSS over blocks of rows with per-block partial sums, reduces. Within a block, rows go in groups
 * whose stats st (row i = g0 + r: st.m[r], st.s[r], st.lg[r], ...) are taken first by STATS. ROW_LOSS returns row i's
 * loss before its sample weight, given xi (its logits), g (its gradient scale), grad_row and hess_row (or
 * NULL; hess_row only with grad_row); rows whose target is ignore_index get 0 and zero gradient and Hessian rows. */
#define FL_CLASS_KERNEL(NAME, INT_TARGETS, HAS_STATS, STATS, SETUP, ROW_LOSS) \
    FL_CLASS_KERNEL_G(NAME, INT_TARGETS, HAS_STATS, STATS, SETUP, 0, ROW_LOSS)
/* HAS_STATS: whether STATS, a statement run for each group of rows g0 .. g1, fills st (the group's stats) */
/* SETUP: statements run once the targets are checked and den is known; they may return the status */
/* GROUP_LOSSES: an expression that fills rl[0 .. g1 - g0) with the group's row losses and gives 1, or gives 0
 * (then ROW_LOSS runs row by row): a vector loop for the common case of a kernel. */
#define FL_CLASS_KERNEL_G(NAME, INT_TARGETS, HAS_STATS, STATS, SETUP, GROUP_LOSSES, ROW_LOSS)           \
    int FL_IMPL(FL_T(NAME))(fl_class_args *a)                                                            \
    {                                                                                                    \
        const fl_index n = a->n_cols;                                                                    \
        double den = 0.0;                                                                                \
        if (INT_TARGETS) {                                                                               \
            int status = FL_T(check_targets)(a, &den);                                                   \
            if (status != FL_OK) return status;                                                          \
        } else if (a->sample_weight) {                                                                   \
            for (fl_index i = 0; i < a->n_rows; i++) den += a->sample_weight[i];                         \
        } else {                                                                                         \
            den = (double)a->n_rows;                                                                     \
        }                                                                                                \
        const double scale = a->reduction == FL_REDUCTION_MEAN ? 1.0 / den : 1.0;                        \
        SETUP;                                                                                           \
        const fl_index rpb = fl_rows_per_block(n);                                                       \
        const fl_index n_blocks = fl_n_blocks(a->n_rows, rpb);                                           \
        /* rows per group: at most FL_GROUP_MAX (the stats and row-loss buffers), nll's too */          \
        const fl_index gr = HAS_STATS ? FL_T(group_rows)(n) : rpb < FL_GROUP_MAX ? rpb : FL_GROUP_MAX;  \
        const int nt = fl_threads_for(a->n_threads, a->n_rows * n, n_blocks);                           \
        fl_partials part;                                                                                \
        if (!fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;                                     \
        const S *X = (const S *)a->logits;                                                               \
        /* a half gradient (a->grad_half, half logits only): each group's rows are computed in float into \
         * a scratch buffer, as into a float gradient, and stored rounded while they are in cache (unless \
         * GROUP_LOSSES stored them itself and set fl__direct: ce_group_half) */                         \
        const int gh = FL_GRAD_HALF(a);                                                                  \
        T *G = gh ? NULL : (T *)a->grad;                                                                 \
        T *H = (T *)a->hess;                                                                             \
        const fl_index scratch_n = n > FL_BLOCK_ELEMENTS ? n : FL_BLOCK_ELEMENTS; /* >= any g1 - g0 rows */ \
        T *LR = (T *)a->loss_rows;                                                                       \
        FL_FOR_BLOCKS(b, n_blocks, nt, {                                                                 \
            /* the options in a local copy: the compiler cannot tell that the stores to the outputs leave \
             * *a alone, and reloaded its fields for every row (a quarter of a 1M x 10 cross-entropy) */    \
            const fl_class_args a_local = *a;                                                            \
            const fl_class_args *const a = &a_local;                                                     \
            const fl_index r1 = (b + 1) * rpb < a->n_rows ? (b + 1) * rpb : a->n_rows;                   \
            double acc[FL_LANES] = {0};                                                                  \
            fl_group_stats st;                                                                           \
            double rl[FL_GROUP_MAX];                                                                     \
            T *const GS = gh ? (T *)malloc((size_t)scratch_n * sizeof(T)) : NULL;                        \
            part.p[2 * b + 1] = gh && !GS; /* out of memory: reported after the loop */                  \
            for (fl_index g0 = b * rpb; g0 < r1 && !part.p[2 * b + 1]; g0 += gr) {                       \
                const fl_index g1 = r1 - g0 < gr ? r1 : g0 + gr;                                         \
                /* where the group's gradient rows go in T: the float gradient, or the scratch buffer */ \
                T *const GG = GS ? GS : G ? G + g0 * n : NULL;                                           \
                STATS;                                                                                   \
                int fl__direct = 0; /* GROUP_LOSSES wrote the half gradient itself: no scratch to store */  \
                if (!(GROUP_LOSSES))                                                                     \
                for (fl_index i = g0, r = 0; i < g1; i++, r++) {                                         \
                    const double sw = a->sample_weight ? a->sample_weight[i] : 1.0;                      \
                    T *grad_row = GG ? GG + r * n : NULL;                                                \
                    T *hess_row = H ? H + i * n : NULL;                                                  \
                    double row;                                                                          \
                    (void)r;                                                                             \
                    if (INT_TARGETS && a->target[i] == a->ignore_index) {                                \
                        row = 0.0;                                                                       \
                        if (grad_row) FL_T(fill)(grad_row, n, (T)0);                                     \
                        if (hess_row) FL_T(fill)(hess_row, n, (T)0);                                     \
                    } else {                                                                             \
                        const S *xi = X + i * a->row_stride;                                             \
                        const double g = sw * scale;                                                     \
                        (void)xi; (void)g;                                                               \
                        row = sw * (ROW_LOSS);                                                           \
                    }                                                                                    \
                    rl[r] = row;                                                                         \
                }                                                                                        \
                /* (the cast: T is float wherever gh is set; the double instantiation never gets here) */ \
                if (GS && !fl__direct)                                                                   \
                    fl_store_row_st((uint16_t *)a->grad + g0 * n, (const float *)(const void *)GS,       \
                                    (g1 - g0) * n, FL_ST);                                               \
                /* the row losses summed in lanes (one running sum made each row wait for the last add) */  \
                if (LR) for (fl_index r = 0; r < g1 - g0; r++) LR[g0 + r] = (T)rl[r];                    \
                FL_LANE_LOOP(r, l, 0, g1 - g0, acc[l] += rl[r]);                                         \
            }                                                                                            \
            part.p[2 * b] = fl_lane_sum(acc);                                                            \
            free(GS);                                                                                    \
        });                                                                                              \
        double loss_sum, nomem;                                                                          \
        fl_partials_sum(&part, n_blocks, &loss_sum, &nomem);                                             \
        fl_partials_free(&part);                                                                         \
        if (nomem) return FL_ERR_NOMEM;                                                                  \
        a->loss_total = fl_reduce(a->reduction, loss_sum, den);                                          \
        return FL_OK;                                                                                    \
    }

/* sum of the class weights, for label smoothing */
static double FL_T(weight_total)(const fl_class_args *a)
{
    double W = 0.0;
    if (!a->weight) return (double)a->n_cols;
    for (fl_index j = 0; j < a->n_cols; j++) W += a->weight[j];
    return W;
}

/* whether a group of g rows takes ce_group_grad_hess (below): softmax's tiles, with a gradient, no smoothing */
static inline int FL_T(ce_tiles)(const fl_class_args *a, fl_index g)
{
    return FL_T(float_tiles)(a->n_cols, g) && a->grad && !(a->label_smoothing > 0.0);
}

/* Few classes, with a gradient: the exps e_j = exp(x_j - m) of the group's rows into their rows of the Hessian
 * (when it is asked, else of the gradient), by one vector exp over the group's g * n differences instead of a
 * short call a row (10 classes: a vector and a masked tail a row, and the call's overhead: 2/3 of the gradient
 * pass). The differences are the float ones the row call forms (x_j - (T)m), so ce_row's scale * e_j keeps its
 * bits. Rows without a finite max get exp(0): their row writes nan (or 0, ignored) over them. Done where
 * ce_group_exps_wanted (ce_row's `pre`); g * n <= FL_GROUP_ELEMENTS (group_rows). */
static inline int FL_T(ce_group_exps_wanted)(const fl_class_args *a)
{
    return a->grad && a->n_cols <= FL_SMALL_C;
}
static inline void FL_T(ce_group_exps)(const fl_class_args *a, const S *FL_RESTRICT X, fl_index g0, fl_index g1,
                                       const fl_group_stats *FL_RESTRICT st, T *grad /* the group's rows */)
{
    const fl_index n = a->n_cols, g = g1 - g0, stride = a->row_stride;
    if (!FL_T(ce_group_exps_wanted)(a) || FL_T(ce_tiles)(a, g)) return; /* (the tiles': from the stats) */
    T d[FL_GROUP_ELEMENTS];
    FL_T(group_diffs)(X + g0 * stride, g, n, stride, st->m, d);
    FL_TC(fl_exp_shifted_scaled)(d, g * n, (T)0, (T)1, a->hess ? (T *)a->hess + g0 * n : grad);
}

/* Few classes with a Hessian: the group a tile of FL_TILE_F32 rows at a time, a row a vector lane, from the
 * terms the stats kept (group_stats_ce with ex: each tile's e_c = exp(x_c - m), their sum sh in double and the
 * target's logit), instead of ce_row row by row, which took the exps again and filled its vectors badly (a row
 * of 10: two double divisions and a sum of its own; 40% of a 200,000 x 10 call). Float compute, no smoothing,
 * where the level stores a tile back into rows (fl_tile_store_f32), and groups of at least a vector (where
 * ce_group_exps' exps are the vector exp: the same bits as the stats'). Per tile, by lane:
 *   grad_c = scale * e_c, scale = (T)(A / s): ce_row's product, the same bits as cross_entropy_and_grad;
 *   hess_c = k e_c (sh - e_c), k = A / sh^2: grad_hess_of_exps' formula (its sum in another order: the last
 *   bit may differ);
 * the target's entries as ce_row writes them, blended in; ignored rows and rows without a finite max filled
 * afterwards as ce_row fills them. Instead of ce_row's loop: 200,000 x 10, 1 thread, 7.5 -> 6.3 ms. */
FL_INLINE void FL_T(ce_group_tiles)(const fl_class_args *a, fl_index g0, fl_index g1,
                                    const fl_group_stats *FL_RESTRICT st, double red_scale, double eWn, T *GG,
                                    T *H, double *FL_RESTRICT rl, const int want_hess)
{
    enum { L = FL_TILE_F32, DN = FL_VD_N }; /* a tile's rows: two double vectors' lanes */
    const fl_index n = a->n_cols;
    const double e = a->label_smoothing; /* 0 (or -0): kept in the formulas so that their bits are ce_row's */
    float *const grad = (float *)(void *)GG, *const hess = want_hess ? (float *)(void *)(H + g0 * n) : NULL;
    for (fl_index r0 = 0; r0 < g1 - g0; r0 += L) {
        const fl_index tr = g1 - g0 - r0 < L ? g1 - g0 - r0 : L;
        const float *FL_RESTRICT eb = st->ex + r0 * n;
        float gb[FL_SMALL_C * L], hb[FL_SMALL_C * L];
        /* the rows' targets, sample weights and stats, a lane each; a short tile's lanes past tr repeat its
         * first row (as its terms do) */
        const int64_t *tp = a->target + g0 + r0;
        const double *swp = a->sample_weight ? a->sample_weight + g0 + r0 : NULL;
        const double *mp = st->m + r0, *sp = st->s + r0, *sop = st->so + r0, *lgp = st->lg + r0;
        int64_t tpad[L];
        double pad[5][L];
        if (tr < L) {
            for (int r = 0; r < L; r++) {
                const fl_index q = r0 + (r < tr ? r : 0);
                tpad[r] = a->target[g0 + q];
                pad[0][r] = st->m[q], pad[1][r] = st->s[q], pad[2][r] = st->so[q], pad[3][r] = st->lg[q];
                pad[4][r] = swp ? a->sample_weight[g0 + q] : 1.0;
            }
            tp = tpad, mp = pad[0], sp = pad[1], sop = pad[2], lgp = pad[3], swp = swp ? pad[4] : NULL;
        }
        int32_t tg[L];
        double swv[L], wtv[L], lv[L];
        for (int r = 0; r < L; r++) tg[r] = tp[r] == a->ignore_index ? -1 : (int32_t)tp[r];
        if (swp) for (int r = 0; r < L; r++) swv[r] = swp[r];
        else for (int r = 0; r < L; r++) swv[r] = 1.0;
        if (a->weight) for (int r = 0; r < L; r++) wtv[r] = a->weight[tg[r] < 0 ? 0 : tg[r]];
        else for (int r = 0; r < L; r++) wtv[r] = 1.0;
        fl_vfi tv;
        memcpy(&tv, tg, sizeof tv);
        /* the target's logit and term (the same vector exp of the same difference: the same bits) */
        const fl_vf mv = fl__vf_narrow(fl__vd_load(mp), fl__vd_load(mp + DN)); /* a float max: exact */
        const fl_vf tx = fl__vf_load(st->xt + r0), te = fl__vexp_nonpos_f32(tx - mv);
        fl_vd sh[2] = {fl__vd_load(st->sh + r0), fl__vd_load(st->sh + r0 + DN)};
        /* ce_row's scalars, by lane in double (the same operations): A = d loss / d x_k over p_k, the scale
         * (T)(A / s), the Hessian's k = A / sh^2, the target's gradient part Gt and, where x_t is the max, its
         * entries -so / s and p_t (1 - p_t) from so; the row's loss */
        fl_vd xt[2], sc[2], k[2], gtm[2], htm[2], gtt[2], te_d[2];
        fl__vf_widen(tx, &xt[0], &xt[1]);
        for (int h = 0; h < 2; h++) {
            const fl_vd m = fl__vd_load(mp + h * DN), s = fl__vd_load(sp + h * DN), so = fl__vd_load(sop + h * DN);
            const fl_vd sw = fl__vd_load(swv + h * DN), wt = fl__vd_load(wtv + h * DN), g = sw * red_scale;
            const fl_vd A = g * ((1.0 - e) * wt + eWn);
            sc[h] = A / s;
            k[h] = A / (sh[h] * sh[h]);
            gtm[h] = -g * wt * so / s;
            htm[h] = A * so / ((1.0 + so) * (1.0 + so));
            gtt[h] = g * (1.0 - e) * wt;
            fl__vd_store(lv + h * DN, sw * ((1.0 - e) * wt * ((m - xt[h]) + fl__vd_load(lgp + h * DN))));
        }
        const fl_vf scv = fl__vf_narrow(sc[0], sc[1]);
        const fl_vfi ism = tx == mv; /* x_t is the max */
        fl__vf_widen(scv * te, &te_d[0], &te_d[1]);
        const fl_vf gt = fl__vf_blend(ism, fl__vf_narrow(gtm[0], gtm[1]),
                                      fl__vf_narrow(te_d[0] - gtt[0], te_d[1] - gtt[1]));
        const fl_vf ht = fl__vf_narrow(htm[0], htm[1]);
        for (fl_index c = 0; c < n; c++) {
            const fl_vf ev = fl__vf_load(eb + c * L);
            const fl_vfi is_t = tv == (fl_vfi){0} + (int32_t)c;
            fl__vf_store(gb + c * L, fl__vf_blend(is_t, gt, scv * ev));
            if (hess) {
                fl_vd elo, ehi;
                fl__vf_widen(ev, &elo, &ehi);
                const fl_vf hv = fl__vf_narrow(k[0] * elo * (sh[0] - elo), k[1] * ehi * (sh[1] - ehi));
                fl__vf_store(hb + c * L, fl__vf_blend(is_t & ism, ht, hv));
            }
        }
        fl_tile_store_f32(grad + r0 * n, gb, n, tr);
        if (hess) fl_tile_store_f32(hess + r0 * n, hb, n, tr);
        int special = 0; /* ignored rows (0) and rows without a finite max (nan), as ce_row writes them */
        for (int r = 0; r < tr; r++) {
            rl[r0 + r] = tg[r] < 0 ? 0.0 : lv[r];
            special |= (tg[r] < 0 || lgp[r] != lgp[r]) << r;
        }
        for (int r = 0; special; r++, special >>= 1) {
            if (!(special & 1)) continue;
            const float f = tg[r] < 0 ? 0.0f : NAN;
            for (fl_index q = 0; q < n; q++) grad[(r0 + r) * n + q] = f;
            if (hess) for (fl_index q = 0; q < n; q++) hess[(r0 + r) * n + q] = f;
        }
    }
}
static inline int FL_T(ce_group_grad_hess)(const fl_class_args *a, fl_index g0, fl_index g1,
                                           const fl_group_stats *FL_RESTRICT st, double red_scale, double eWn,
                                           T *GG, T *H, double *FL_RESTRICT rl)
{
    if (!FL_T(ce_tiles)(a, g1 - g0)) return 0;
    if (H) FL_T(ce_group_tiles)(a, g0, g1, st, red_scale, eWn, GG, H, rl, 1);
    else FL_T(ce_group_tiles)(a, g0, g1, st, red_scale, eWn, GG, H, rl, 0);
    return 1;
}

/* The common call (no class or sample weights, no smoothing, no gradient): loss_i = (m - x_t) + log s, 0
 * for ignored rows, over the whole group in one loop that vectorises (x_t gathered); ce_row gives the same bits. */
static inline int FL_T(ce_group_plain)(const fl_class_args *a, const S *FL_RESTRICT x, fl_index g0, fl_index g1,
                                       const fl_group_stats *FL_RESTRICT st, double *FL_RESTRICT rl)
{
    if (a->weight || a->sample_weight || a->label_smoothing > 0.0 || a->grad || a->hess) return 0;
    const int64_t *FL_RESTRICT target = a->target + g0;
    const fl_index stride = a->row_stride, ignore = a->ignore_index;
    x += g0 * stride;
    for (fl_index r = 0; r < g1 - g0; r++) {
        const int64_t t = target[r];
        const double loss = (st->m[r] - (double)FL_LD(x[r * stride + (t == ignore ? 0 : t)])) + st->lg[r];
        rl[r] = t == ignore ? 0.0 : loss;
    }
    return 1;
}

/* A half gradient (a->grad_half) of rows of more than FL_GROUP_ELEMENTS / 2 classes (a group of one row), without
 * a Hessian, smoothing or the group's exps: each row's gradient is stored rounded straight from the vector exps
 * instead of computed in float into the scratch row and rounded in a second pass (32,000 classes: 128 KB of
 * scratch a row, in L2, not L1). The same bits: ce_row's loss (called without a gradient), its float values
 * (scale e_j, the target's entry from the same vector exp's lane), rounded by the same stores; ignored rows 0 and
 * rows without a finite max nan, as ce_row and the kernel's row loop write them. Fills rl as the row loop does;
 * gives 0 (nothing done) where it does not apply. */
static inline int FL_T(ce_group_half)(const fl_class_args *a, const S *X, fl_index g0, fl_index g1,
                                      const fl_group_stats *st, double scale, double W, double eWn, int pre,
                                      double *FL_RESTRICT rl)
{
    const fl_index n = a->n_cols;
    if (!FL_GRAD_HALF(a) || a->hess || a->label_smoothing > 0.0 || pre || FL_T(group_rows)(n) != 1) return 0;
    const double e = a->label_smoothing; /* 0 (or -0): in the formulas as ce_row has it, for its bits */
    for (fl_index i = g0, r = 0; i < g1; i++, r++) {
        void *const out = (uint16_t *)a->grad + i * n;
        const int64_t t = a->target[i];
        if (t == a->ignore_index) {
            rl[r] = 0.0;
            fl_fill_st(out, n, 0.0f, FL_ST);
            continue;
        }
        const S *xi = X + i * a->row_stride;
        const double sw = a->sample_weight ? a->sample_weight[i] : 1.0, g = sw * scale;
        rl[r] = sw * FL_T(ce_row)(xi, n, st, r, t, a->weight, W, eWn, e, g, NULL, NULL, 0, 0);
        const double m = st->m[r], s = st->s[r], lg = st->lg[r], xt = (double)FL_LD(xi[t]);
        if (lg != lg) {
            fl_fill_st(out, n, NAN, FL_ST);
            continue;
        }
        const double wt = a->weight ? a->weight[t] : 1.0;
        const float sc = (float)(FL_T(ce_grad_scale)(g, wt, e, eWn) / s);
        fl_exp_shifted_scaled_to_st(xi, n, (float)m, sc, out, FL_ST, FL_ST);
        const float gt = e == 0.0 && xt == m
                             ? (float)(-g * wt * st->so[r] / s)
                             : (float)((double)fl_exp_shifted_scaled_at_st(xi, t, (float)m, sc, FL_ST)
                                       - g * (1.0 - e) * wt);
        fl_store_st(out, t, gt, FL_ST);
    }
    return 1;
}

FL_CLASS_KERNEL_G(fl_cross_entropy, 1, 1,
                  {
                      FL_T(group_stats_ce)(X + g0 * a->row_stride, g1 - g0, n, a->row_stride, a->target + g0,
                                           a->ignore_index, a->label_smoothing > 0.0 && !a->weight,
                                           FL_T(ce_tiles)(a, g1 - g0), &st);
                      FL_T(ce_group_exps)(a, X, g0, g1, &st, GG);
                  },
                  const double W = FL_T(weight_total)(a);
                  const double eWn = a->label_smoothing * W / (double)n;
                  const int pre = FL_T(ce_group_exps_wanted)(a);
                  /* (a half gradient: rows through a scratch row in cache, or stored from the exps by
                   * ce_group_half; plain stores either way: no streaming) */
                  const int stream = FL_T(stream_out)(FL_GRAD_HALF(a) ? NULL : a->grad, a->n_rows * n),
                  (fl__direct = FL_T(ce_group_half)(a, X, g0, g1, &st, scale, W, eWn, pre, rl)) ||
                      FL_T(ce_group_plain)(a, X, g0, g1, &st, rl) ||
                      FL_T(ce_group_grad_hess)(a, g0, g1, &st, scale, eWn, GG, H, rl),
                  FL_T(ce_row)(xi, n, &st, r, (fl_index)a->target[i], a->weight, W, eWn, a->label_smoothing, g, grad_row,
                               hess_row, stream, pre))

/* ---- cross_entropy with probability targets --------------------------------------------------------------
 * With q'_c = (1 - e) q_c + e / C and Sw = sum_c w_c q'_c:
 *   loss_i = sw_i * sum_c w_c q'_c (L - x_c) = sw_i * [ Sw log(s) - sum_c w_c q'_c (x_c - m) ]
 *   d loss_i / d x_k = sw_i * (Sw p_k - w_k q'_k),   d^2 loss_i / d x_k^2 = sw_i * Sw p_k (1 - p_k)
 * (x_c - m is formed in double: no cancellation between L and x_c for large logits; 1 - p_k as (s - e_k) / s,
 * the others' sum: see grad_hess_of_exps.) */
static inline double FL_T(ce_prob_row)(const S *FL_RESTRICT x, const S *FL_RESTRICT q, fl_index n, double m,
                                       double s, double lg, const double *FL_RESTRICT w, double e, double g,
                                       T *FL_RESTRICT grad_row, T *FL_RESTRICT hess_row)
{
    const double u = e / (double)n, keep = 1.0 - e;
    double Sw = 0.0, dot = 0.0;
    for (fl_index j = 0; j < n; j++) {
        const double wq = (w ? w[j] : 1.0) * (keep * (double)FL_LD(q[j]) + u);
        Sw += wq;
        dot += wq * ((double)FL_LD(x[j]) - m);
    }
    if (grad_row) {
        if (lg != lg) {
            FL_T(fill)(grad_row, n, (T)NAN);
            if (hess_row) FL_T(fill)(hess_row, n, (T)NAN);
        } else {
            const double a_s = g * Sw / s;
            double sh = 0.0, k = 0.0; /* the exps' own sum for the Hessian (see grad_hess_of_exps) */
            if (hess_row) {
                for (fl_index j = 0; j < n; j++) hess_row[j] = T_EXP(FL_LD(x[j]) - (T)m);
                sh = FL_T(exps_sum)(hess_row, n);
                k = g * Sw / (sh * sh);
            }
            for (fl_index j = 0; j < n; j++) {
                const double wq = (w ? w[j] : 1.0) * (keep * (double)FL_LD(q[j]) + u);
                const double ej = hess_row ? (double)hess_row[j] : (double)T_EXP(FL_LD(x[j]) - (T)m);
                grad_row[j] = (T)(a_s * ej - g * wq);
                if (hess_row) hess_row[j] = (T)(k * ej * (sh - ej));
            }
        }
    }
    /* 0 * -inf = nan where q'_c = 0 and x_c = -inf, as torch (0 * log 0 in its formula) */
    return lg != lg ? (double)NAN : Sw * lg - dot;
}

FL_CLASS_KERNEL(fl_cross_entropy_prob, 0, 1,
                FL_T(group_stats)(X + g0 * a->row_stride, g1 - g0, n, a->row_stride, &st), (void)0,
                FL_T(ce_prob_row)(xi, (const S *)a->target_prob + i * a->target_row_stride, n, st.m[r], st.s[r],
                                  st.lg[r],
                                  a->weight,
                                  a->label_smoothing, g, grad_row, hess_row))

/* ---- nll_loss: loss_i = -sw_i w_t x_t; gradient -sw_i w_t at the target, 0 elsewhere ------------------ */
static inline double FL_T(nll_row)(const S *FL_RESTRICT x, fl_index n, fl_index t, const double *FL_RESTRICT w,
                                   double g, T *FL_RESTRICT grad_row)
{
    const double wt = w ? w[t] : 1.0;
    if (grad_row) {
        FL_T(fill)(grad_row, n, (T)0);
        grad_row[t] = (T)(-g * wt);
    }
    return -wt * (double)FL_LD(x[t]);
}

/* The call without a gradient: loss_i = -sw_i w_t x_t, one element picked a row, so the work is the rows, not
 * the elements. The blocks and their lanes are the ones the class-kernel driver gives _and_grad (rpb rows a
 * block by n, row i in lane (i - block start) % FL_LANES, blocks added in order): the same bits as the loss of
 * nll_loss_and_grad. But a task takes whole runs of blocks, about FL_BLOCK_ELEMENTS rows: with rows of 16,384
 * classes and more a block is one row, and the driver's per-block work (a copy of the options, the lane sums,
 * the schedule) cost 4,096 x 32,000 float32 184 us against NumPy's 40 us gather of the same picks.
 * The element each row picks is prefetched FL_NLL_AHEAD rows ahead where rows are longer than two cache lines:
 * each pick is then a cache line of its own (and a page of its own from 1,024 float32 classes), and the loop
 * waited for each miss in turn (65,536 x 1,000, 1 thread: 20.9 ms, 2.2 ms with the prefetches). Short rows are
 * read in full by the hardware prefetcher anyway. The targets are checked first (check_targets, in vectors, as for
 * _and_grad): checking them in the pick loop instead saved nothing at 1,000,000 x 10 and cost 65,536 x 1,000
 * a quarter more. */
#define FL_NLL_AHEAD 16
#define FL_NLL_TASK_ROWS 1024
#define FL_NLL_PICK_COST 16
/* rows g0 .. g1 - 1 (targets checked): rl[i - g0] = the row's loss, 0 if ignored */
FL_INLINE void FL_T(nll_picks)(const fl_class_args *a, fl_index g0, fl_index g1, int prefetch, double *FL_RESTRICT rl)
{
    const S *FL_RESTRICT x = (const S *)a->logits;
    const int64_t *FL_RESTRICT target = a->target;
    const double *FL_RESTRICT w = a->weight, *FL_RESTRICT sw = a->sample_weight;
    const fl_index n_rows = a->n_rows, stride = a->row_stride, ignore = a->ignore_index;
    for (fl_index i = g0; i < g1; i++) {
#if defined(__GNUC__) || defined(__clang__)
        if (prefetch && i + FL_NLL_AHEAD < n_rows) {
            const int64_t ta = target[i + FL_NLL_AHEAD];
            __builtin_prefetch(x + (i + FL_NLL_AHEAD) * stride + (ta == ignore ? 0 : ta), 0, 3);
        }
#endif
        const int64_t t = target[i];
        const double xt = (double)FL_LD(x[i * stride + (t == ignore ? 0 : t)]);
        rl[i - g0] = t == ignore ? 0.0 : (sw ? sw[i] : 1.0) * (-(w ? w[t] : 1.0) * xt);
    }
}

static int FL_T(nll_loss_only)(fl_class_args *a, double *den_out)
{
    const fl_index n_rows = a->n_rows, n_cols = a->n_cols, stride = a->row_stride;
    double den = 0.0;
    int status = FL_T(check_targets)(a, &den);
    *den_out = den;
    if (status != FL_OK) return status;
    const int prefetch = stride * (fl_index)sizeof(S) > 128;
    /* a pick from a long row is a miss of its own, FL_NLL_PICK_COST elements' work, not one element's: the
     * threads are counted so, and a task takes FL_NLL_TASK_ROWS such rows at most (with FL_BLOCK_ELEMENTS rows a
     * task, 4,096 rows of 32,000 classes were one task and one thread). 16, not a line's 64 elements: 4,096
     * picks (~150 us on one thread after an idle gap) are then not worth a sleeping worker's wake-up
     * (fl_threads_for), which made 2 threads slower than 1 there (a process with torch loaded, 30 ms idle before
     * each call: 242-277 us against 151-168) */
    const fl_index rpb = fl_rows_per_block(n_cols), n_blocks = fl_n_blocks(n_rows, rpb);
    const fl_index task_rows = prefetch ? FL_NLL_TASK_ROWS : FL_BLOCK_ELEMENTS;
    const fl_index per_task = (task_rows + rpb - 1) / rpb, n_tasks = fl_n_blocks(n_blocks, per_task);
    const int nt = fl_threads_for(a->n_threads, prefetch ? n_rows * FL_NLL_PICK_COST : n_rows, n_tasks);
    /* On one thread the blocks' sums are added as they come, in block order: fl_partials_sum's bits without its
     * array (a block a row from 16,384 classes: 4,096 x 32,000 float32 wrote and read back 64 KB; one process,
     * interleaved, 30 ms idle before each call: 59 -> 52 and 95 -> 88 us in two runs) */
    const int serial = nt == 1;
    double serial_sum = 0.0;
    fl_partials part;
    part.p = NULL;
    if (!serial && !fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;
#define FL__NLL_BLOCK_SUM(blk, v)                                                                              \
    do {                                                                                                       \
        if (serial) serial_sum += (v);                                                                         \
        else part.p[2 * (blk)] = (v), part.p[2 * (blk) + 1] = 0.0;                                             \
    } while (0)
    T *FL_RESTRICT LR = (T *)a->loss_rows;
    FL_FOR_BLOCKS_READING(k, n_tasks, nt, { /* its losses are small; the gradient's loop, if any, takes the watch */
        const fl_index r0 = k * per_task * rpb, r1 = (k + 1) * per_task * rpb < n_rows ? (k + 1) * per_task * rpb
                                                                                        : n_rows;
        double acc[FL_LANES], rl[FL_GROUP_MAX];
        for (int l = 0; l < FL_LANES; l++) acc[l] = 0.0;
        if (rpb >= FL_GROUP_MAX) {
            /* short rows (64 classes or fewer): a block's rows in groups from its start, each group's losses
             * added to the lanes in one vector loop (lane (i - block start) % FL_LANES) */
            for (fl_index b0 = r0, blk = k * per_task; b0 < r1; b0 += rpb, blk++) {
                const fl_index b1 = r1 - b0 < rpb ? r1 : b0 + rpb;
                for (fl_index g0 = b0; g0 < b1; g0 += FL_GROUP_MAX) {
                    const fl_index g1 = b1 - g0 < FL_GROUP_MAX ? b1 : g0 + FL_GROUP_MAX;
                    FL_T(nll_picks)(a, g0, g1, prefetch, rl);
                    if (LR)
                        for (fl_index i = g0; i < g1; i++) LR[i] = (T)rl[i - g0];
                    FL_LANE_LOOP(r, l, 0, g1 - g0, acc[l] += rl[r]);
                }
                FL__NLL_BLOCK_SUM(blk, fl_lane_sum(acc));
                for (int l = 0; l < FL_LANES; l++) acc[l] = 0.0;
            }
        } else {
            /* longer rows: the picks of as many whole blocks as FL_GROUP_MAX rows hold, first (no dependence
             * between rows, so the misses overlap across blocks), then each block's lanes; a block of one row
             * (16,384 classes and more): the loss plus zeros */
            const fl_index bpg = FL_GROUP_MAX / rpb, b_end = (k + 1) * per_task < n_blocks ? (k + 1) * per_task
                                                                                          : n_blocks;
            for (fl_index gb = k * per_task; gb < b_end; gb += bpg) {
                const fl_index g0 = gb * rpb, g1 = (gb + bpg) * rpb < r1 ? (gb + bpg) * rpb : r1;
                FL_T(nll_picks)(a, g0, g1, prefetch, rl);
                if (LR)
                    for (fl_index i = g0; i < g1; i++) LR[i] = (T)rl[i - g0];
                for (fl_index blk = gb, s0 = g0; s0 < g1; blk++, s0 += rpb) {
                    const fl_index s1 = g1 - s0 < rpb ? g1 : s0 + rpb;
                    if (rpb == 1) {
                        FL__NLL_BLOCK_SUM(blk, (0.0 + rl[s0 - g0]) + 0.0);
                    } else {
                        for (int l = 0; l < FL_LANES; l++) acc[l] = 0.0;
                        FL_LANE_LOOP(r, l, s0 - g0, s1 - g0, acc[l] += rl[r]);
                        FL__NLL_BLOCK_SUM(blk, fl_lane_sum(acc));
                    }
                }
            }
        }
    });
#undef FL__NLL_BLOCK_SUM
    double loss_sum = serial_sum, unused;
    if (!serial) {
        fl_partials_sum(&part, n_blocks, &loss_sum, &unused);
        fl_partials_free(&part);
    }
    a->loss_total = fl_reduce(a->reduction, loss_sum, den);
    return FL_OK;
}

/* The gradient into memory that is all zeros already (a->grad_zeroed: a new calloc'd array, whose pages the OS
 * zeroes as they are first written): the loss as nll_loss_only (the driver's bits), then only the one nonzero
 * entry of each row that counts, -sw_i w_t scale as nll_row writes it. The driver would write every entry: a
 * second zeroing of pages the OS has just zeroed. A new float32 gradient each call, interleaved processes:
 * 4,096 x 32,000 42.7 -> 32.8 ms, 65,536 x 1,000 24.9 -> 17.5 ms, 1,000,000 x 10 9.0 -> 6.7 ms. The work is the
 * rows' picks, counted (for the threads) as nll_loss_only counts them. */
static int FL_T(nll_into_zeros)(fl_class_args *a)
{
    double den;
    const int status = FL_T(nll_loss_only)(a, &den);
    if (status != FL_OK) return status;
    const double scale = a->reduction == FL_REDUCTION_MEAN ? 1.0 / den : 1.0;
    T *FL_RESTRICT G = (T *)a->grad;
    const fl_index n_rows = a->n_rows, n = a->n_cols;
    const fl_index n_tasks = fl_n_blocks(n_rows, FL_NLL_TASK_ROWS);
    const int nt = fl_threads_for(a->n_threads, n_rows * FL_NLL_PICK_COST, n_tasks);
    FL_FOR_BLOCKS(k, n_tasks, nt, {
        const fl_index i0 = k * FL_NLL_TASK_ROWS;
        const fl_index i1 = n_rows - i0 < FL_NLL_TASK_ROWS ? n_rows : i0 + FL_NLL_TASK_ROWS;
        for (fl_index i = i0; i < i1; i++) {
            const int64_t t = a->target[i];
            if (t == a->ignore_index) continue;
            const double g = (a->sample_weight ? a->sample_weight[i] : 1.0) * scale;
            G[i * n + t] = (T)(-g * (a->weight ? a->weight[t] : 1.0));
        }
    });
    return FL_OK;
}

/* with a gradient (or Hessian): the driver's rows, or nll_into_zeros; without, nll_loss_only */
static FL_CLASS_KERNEL_G(fl_nll_rows, 1, 0, (void)st, (void)0, 0,
                         FL_T(nll_row)(xi, n, (fl_index)a->target[i], a->weight, g, grad_row))

int FL_IMPL(FL_T(fl_nll))(fl_class_args *a)
{
    double den;
    if (a->grad && a->grad_zeroed && !a->hess && !FL_GRAD_HALF(a)) return FL_T(nll_into_zeros)(a);
    return a->grad || a->hess ? FL_IMPL(FL_T(fl_nll_rows))(a) : FL_T(nll_loss_only)(a, &den);
}

#undef FL_CLASS_KERNEL

/* ---- evaluate: cross-entropy and top-k hits in one read of the logits ---------------------------------------
 * Per row with a target t that is not ignore_index: loss w_t (-log p_t) and the rank #{j : !(x_j <= x_t)} (a nan
 * counts as above the target; a nan x_t has rank n: never in any top k), both from the row's one pass (row_stats
 * counts in the pass of the max); a top-k hit iff rank < k. Blocks, groups, the row losses and their lanes are
 * those of the cross_entropy kernel, so each block's loss sum is the one cross_entropy adds, bit for bit. Each
 * block writes [sum of losses, sum of w_t, rows counted, hits for topk[0], ...] to its row of block_sums. */
int FL_IMPL(FL_T(fl_evaluate))(fl_eval_args *a)
{
    int status = fl_check_class_targets(a->target, a->n_rows, a->n_cols, a->ignore_index, &a->bad_position,
                                        &a->bad_value);
    if (status != FL_OK) return status;
    const fl_index n = a->n_cols, width = 3 + a->n_topk;
    const fl_index rpb = fl_rows_per_block(n);
    const fl_index n_blocks = fl_n_blocks(a->n_rows, rpb);
    const fl_index gr = FL_T(group_rows)(n);
    const int nt = fl_threads_for(a->n_threads, a->n_rows * n, n_blocks);
    const S *X = (const S *)a->logits;
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_eval_args a_local = *a;
        const fl_eval_args *const a = &a_local;
        const fl_index r1 = (b + 1) * rpb < a->n_rows ? (b + 1) * rpb : a->n_rows;
        double *out = a->block_sums + b * width;
        double acc[FL_LANES] = {0}, rl[FL_GROUP_MAX], weight = 0.0, counted = 0.0;
        fl_group_stats st;
        for (fl_index k = 0; k < a->n_topk; k++) out[3 + k] = 0.0;
        for (fl_index g0 = b * rpb; g0 < r1; g0 += gr) {
            const fl_index g1 = r1 - g0 < gr ? r1 : g0 + gr;
            FL_T(group_stats_rank)(X + g0 * a->row_stride, g1 - g0, n, a->row_stride, a->target + g0,
                                   a->ignore_index, &st);
            for (fl_index r = 0; r < g1 - g0; r++) {
                const int64_t t = a->target[g0 + r];
                if (t == a->ignore_index) {
                    rl[r] = 0.0;
                    continue;
                }
                const double wt = a->weight ? a->weight[t] : 1.0;
                const S *xi = X + (g0 + r) * a->row_stride;
                rl[r] = wt * ((st.m[r] - (double)FL_LD(xi[t])) + st.lg[r]);
                weight += wt;
                counted += 1.0;
                for (fl_index k = 0; k < a->n_topk; k++) out[3 + k] += (double)(st.rank[r] < (double)a->topk[k]);
            }
            FL_LANE_LOOP(r, l, 0, g1 - g0, acc[l] += rl[r]);
        }
        out[0] = fl_lane_sum(acc);
        out[1] = weight;
        out[2] = counted;
    });
    return FL_OK;
}
#undef T_EXP
#undef T_SUM_EXP
#undef T_MAX
#undef T_EXP_SCALED
#undef T_EXP_SCALED_NT
#undef T_TILE
#undef T_TILE_STATS
#undef T_SUM_EXP_D
#undef T_MAX_COUNT
#undef T_TILE_LOAD
#undef FL_GRAD_HALF
