/* distributions_tpl.h -- the distribution kernels (entropy, categorical_cross_entropy, kl_divergence) and the
 * element-wise kernels (binary_cross_entropy_with_logits, kl_div) for one input dtype.
 * Included by distributions.c through each_dtype.h (S, T, FL_LD, FL_ST, FL_T, FL_TC: see there). */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include distributions_tpl.h through each_dtype.h"
#endif

/* ---- rows of probabilities --------------------------------------------------------------------------------
 * out_i = sum_j term(p_ij, q_ij) / log_base, summed in double. A negative p or q is noted while summing (one
 * flag, no branch in the loop); the row is scanned again for its first negative entry only then. */
FL_INLINE double FL_T(dist_row)(int kind, const S *FL_RESTRICT p, const S *FL_RESTRICT q, fl_index n,
                                fl_index *bad_col, int *bad_operand, int *hint)
{
    double fast = 0.0;
    if (FL_ST != FL_ST_F64 && fl_dist_row_float_vec(kind, p, q, n, &fast, FL_ST, hint)) return fast;
    double acc[FL_LANES] = {0};
    int neg[FL_LANES] = {0};
    /* float rows are widened chunk by chunk into double buffers first: gcc vectorises the double loop, not the
     * same loop mixing float loads with double lanes (FL_DIST_CHUNK is a multiple of FL_LANES: lanes line up) */
    double pb[FL_DIST_CHUNK], qb[FL_DIST_CHUNK];
    for (fl_index j0 = 0; j0 < n; j0 += FL_DIST_CHUNK) {
        const fl_index len = n - j0 < FL_DIST_CHUNK ? n - j0 : FL_DIST_CHUNK;
        const double *FL_RESTRICT pd = (const double *)(const void *)(p + j0);
        const double *FL_RESTRICT qd = kind == FL_DIST_ENTROPY ? pd : (const double *)(const void *)(q + j0);
        if (sizeof(S) != sizeof(double)) {
            for (fl_index j = 0; j < len; j++) pb[j] = (double)FL_LD(p[j0 + j]);
            if (kind != FL_DIST_ENTROPY)
                for (fl_index j = 0; j < len; j++) qb[j] = (double)FL_LD(q[j0 + j]);
            pd = pb;
            qd = kind == FL_DIST_ENTROPY ? pb : qb;
        }
        FL_LANE_LOOP(j, l, 0, len, {
            const double pj = pd[j];
            const double qj = kind == FL_DIST_ENTROPY ? 0.0 : qd[j];
            neg[l] |= (pj < 0.0) | (qj < 0.0);
            acc[l] += sizeof(S) == sizeof(double) ? fl_dist_term(kind, pj, qj) : fl_dist_term_fdata(kind, pj, qj);
        });
    }
    const double s = fl_lane_sum(acc);
    int negative = 0;
    for (int l = 0; l < FL_LANES; l++) negative |= neg[l];
    if (negative) {
        for (fl_index j = 0; j < n; j++) {
            const int in_q = kind != FL_DIST_ENTROPY && FL_LD(q[j]) < 0;
            if (FL_LD(p[j]) < 0 || in_q) {
                *bad_col = j;
                *bad_operand = FL_LD(p[j]) < 0 ? 0 : 1;
                break;
            }
        }
    }
    return s;
}

/* One out-of-line row function (and flat-span function) per kind: inside an OpenMP region `kind` would be a
 * runtime value, and the row loop, compiled with the branches of every kind, would not vectorise (seen: 3x
 * slower on 2 threads). */
/* hint: where the block's previous row or span left it (fl_dist_row_kl, fl_dist_rows_flat_vec): which pass to try
 * first, never the result */
typedef double (*FL_T(dist_row_fn))(const S *p, const S *q, fl_index n, fl_index *bad_col, int *bad_operand,
                                    int *hint);
typedef void (*FL_T(dist_flat_fn))(const S *p, const S *q, fl_index rows, fl_index n, double *out,
                                   unsigned char *done, int *hint);
/* the flat path of short contiguous rows: float64 data in double (fl_dist_rows_flat_f64), float data in float
 * vectors where the level has them */
#ifdef FL_DIST_FLOAT_VEC
#define FL__DIST_FLAT_FLOAT(KIND) fl_dist_rows_flat_vec(KIND, p, q, rows, n, out, done, FL_ST, hint)
#else
#define FL__DIST_FLAT_FLOAT(KIND) memset(done, 0, (size_t)rows) /* not reached: FL__DIST_FLAT gives NULL */
#endif
#define FL__DIST_FLAT_OF(KIND, NAME)                                                                          \
    FL_BLOCK_FN void FL_T(NAME)(const S *p, const S *q, fl_index rows, fl_index n, double *out,               \
                                unsigned char *done, int *hint)                                               \
    {                                                                                                         \
        (void)hint; /* float64: fl_dist_rows_flat_f64 has one order */                                      \
        if (FL_ST == FL_ST_F64)                                                                               \
            fl_dist_rows_flat_f64(KIND, (const double *)(const void *)p, (const double *)(const void *)q, rows, \
                                  n, out, done);                                                              \
        else                                                                                                  \
            FL__DIST_FLAT_FLOAT(KIND);                                                                        \
    }
#define FL_DIST_ROW_OF(KIND, NAME, FLAT_NAME)                                                              \
    FL_BLOCK_FN double FL_T(NAME)(const S *p, const S *q, fl_index n, fl_index *bad_col, int *bad_operand, \
                                  int *hint)                                                               \
    {                                                                                                      \
        return FL_T(dist_row)(KIND, p, q, n, bad_col, bad_operand, hint);                                  \
    }                                                                                                      \
    FL__DIST_FLAT_OF(KIND, FLAT_NAME)
FL_DIST_ROW_OF(FL_DIST_ENTROPY, entropy_row, entropy_flat)
FL_DIST_ROW_OF(FL_DIST_CROSS_ENTROPY, cross_entropy_row, cross_entropy_flat)
FL_DIST_ROW_OF(FL_DIST_KL, kl_row, kl_flat)
#undef FL_DIST_ROW_OF
#undef FL__DIST_FLAT_OF
#undef FL__DIST_FLAT_FLOAT
#ifdef FL_DIST_FLOAT_VEC
#define FL__DIST_FLAT(NAME) FL_T(NAME)
#else
#define FL__DIST_FLAT(NAME) (FL_ST == FL_ST_F64 ? FL_T(NAME) : NULL)
#endif

/* Blocks of rows (partition by shape only); part[2b] gets the block's first negative entry (row * n_cols + col,
 * or -1) and part[2b + 1] its operand. On error the first one in row order is reported. Short contiguous float
 * rows go through flat_fn a span at a time first; the rows it leaves undone (specials, cancellation) through
 * row_fn, which finds the negatives. */
FL_INLINE int FL_T(dist_kernel)(int kind, FL_T(dist_row_fn) row_fn, FL_T(dist_flat_fn) flat_fn, fl_dist_args *a)
{
    const fl_index n = a->n_cols;
    const fl_index rpb = fl_rows_per_block(n);
    const fl_index n_blocks = fl_n_blocks(a->n_rows, rpb);
    const int nt = fl_threads_for(a->n_threads, a->n_rows * n, n_blocks);
    fl_partials part;
    if (!fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;
    const S *P = (const S *)a->p;
    const S *Q = (const S *)a->q;
    T *out = (T *)a->out;
    /* base e: no division a row (its latency was a tenth of a 1M x 10 kl_divergence; s / 1 is s) */
    const int natural = a->log_base == 1.0;
    const int flat = flat_fn != NULL &&
                     (n <= FL_DIST_SHORT_ROWS || (FL_ST != FL_ST_F64 && n <= FL_DIST_SHORT_ROWS_F && n % FL_DIST_GROUP)) &&
                     a->p_row_stride == n &&
                     (kind == FL_DIST_ENTROPY || a->q_row_stride == n);
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index r1 = (b + 1) * rpb < a->n_rows ? (b + 1) * rpb : a->n_rows;
        double first_bad = -1.0, operand = 0.0;
        double sums[FL_DIST_FLAT_ROWS];
        unsigned char done[FL_DIST_FLAT_ROWS];
        fl_index span = 1;
        int hint = fl_dist_hint; /* the thread's last row, from block to block (rows of 32,000: one a block) */
        for (fl_index i0 = b * rpb; i0 < r1; i0 += span) {
            span = 1;
            done[0] = 0;
            if (flat) {
                /* whole tiles of rows (the flat path's sums: FL_TILE_F32 rows at a time) where a span holds one */
                const fl_index fit = FL_DIST_FLAT_ROWS / n, most = fit >= FL_TILE_F32 ? fit / FL_TILE_F32 * FL_TILE_F32 : fit;
                span = most < r1 - i0 ? most : r1 - i0;
                flat_fn(P + i0 * n, kind == FL_DIST_ENTROPY ? NULL : Q + i0 * n, span, n, sums, done, &hint);
            }
            for (fl_index r = 0; r < span; r++) {
                const fl_index i = i0 + r;
                fl_index bad_col = -1;
                int bad_operand = 0;
                const S *qi = kind == FL_DIST_ENTROPY ? NULL : Q + i * a->q_row_stride;
                const double s = done[r] ? sums[r] : row_fn(P + i * a->p_row_stride, qi, n, &bad_col, &bad_operand, &hint);
                out[i] = (T)(natural ? s : s / a->log_base);
                if (bad_col >= 0 && first_bad < 0.0) {
                    first_bad = (double)(i * n + bad_col);
                    operand = (double)bad_operand;
                }
            }
        }
        part.p[2 * b] = first_bad;
        part.p[2 * b + 1] = operand;
        fl_dist_hint = hint;
    });
    int status = FL_OK;
    for (fl_index b = 0; b < n_blocks; b++)
        if (part.p[2 * b] >= 0.0) {
            a->bad_position = (fl_index)part.p[2 * b];
            a->bad_operand = (int)part.p[2 * b + 1];
            const fl_index i = a->bad_position / n, j = a->bad_position % n;
            a->bad_fvalue = a->bad_operand ? (double)FL_LD(Q[i * a->q_row_stride + j]) : (double)FL_LD(P[i * a->p_row_stride + j]);
            status = FL_ERR_NEGATIVE;
            break;
        }
    fl_partials_free(&part);
    return status;
}

int FL_IMPL(FL_T(fl_entropy))(fl_dist_args *a)
{
    return FL_T(dist_kernel)(FL_DIST_ENTROPY, FL_T(entropy_row), FL__DIST_FLAT(entropy_flat), a);
}
int FL_IMPL(FL_T(fl_categorical_cross_entropy))(fl_dist_args *a)
{
    return FL_T(dist_kernel)(FL_DIST_CROSS_ENTROPY, FL_T(cross_entropy_row), FL__DIST_FLAT(cross_entropy_flat), a);
}
int FL_IMPL(FL_T(fl_kl_divergence))(fl_dist_args *a)
{
    return FL_T(dist_kernel)(FL_DIST_KL, FL_T(kl_row), FL__DIST_FLAT(kl_flat), a);
}
#undef FL__DIST_FLAT

/* ---- element-wise losses ----------------------------------------------------------------------------------
 * ELEM(x, y, pos_weight, flag, &dloss, &d2loss) returns one element's loss and sets d loss / dx and d2 loss / dx2
 * (fl_bce_elem, fl_kl_div_elem); inlined with a constant function, so each kernel gets its own loop. Loss and
 * derivatives come from one pass: loss_i = w_i * ELEM, grad_i = w_i * dloss * scale, hess_i = w_i * d2loss *
 * scale (HAS_HS: a constant where this is inlined, so that the loss and the gradient alone pay nothing for it).
 * Weights repeat with their period. */
typedef double (*FL_T(elem_fn))(double x, double y, double pw, int flag, double *dloss, double *d2loss);

/* err: NULL, or (the reductions of float data where velemd has a float form) its bound, FL_FLOAT_TERMS_BLOCK's */
FL_INLINE double FL_T(elem_block)(FL_T(elem_fn) elem, fl_velem_fn velem, fl_velemd_fn velemd,
                                  const fl_elem_args *a, fl_index i0, fl_index i1, double scale, const int HAS_HS,
                                  double *err)
{
    const S *FL_RESTRICT xs = (const S *)a->x;
    const S *FL_RESTRICT ys = (const S *)a->y;
    const double *FL_RESTRICT ws = a->weight;
    const double *FL_RESTRICT pws = a->pos_weight;
    T *FL_RESTRICT lr = (T *)a->loss_rows;
    T *FL_RESTRICT gr = (T *)a->grad;
    T *FL_RESTRICT hs = HAS_HS ? (T *)a->hess : NULL;
    double acc[FL_LANES] = {0};
    if (velem && FL_ST != FL_ST_F64 && !ws && !pws) { /* float-computed, no weights: the vector form */
        int n_bad = 0;
        fl_index k0;
        /* two instances: the double form's without the float form's code (5% slower with it) */
#define FL__ELEM_PART(E)                                                                                      \
    fl_velem_part(velem, velemd, 0, xs, ys, (float *)lr, (float *)gr, (float *)hs, fl_s0, fl_s1, 0.0f, 0, scale, \
                  acc, &n_bad, E, FL_ST)
        FL_FLOAT_TERMS_BLOCK(k0, i0, i1, err, acc, fl_e ? FL__ELEM_PART(fl_e) : FL__ELEM_PART(NULL),
                             for (int l = 0; l < FL_LANES; l++) acc[l] = 0.0);
#undef FL__ELEM_PART
        i0 = k0;
    }
    const fl_index wp = ws ? a->weight_period : i1, pp = pws ? a->pos_weight_period : i1;
    fl_index jw = ws ? i0 % wp : 0, jp = pws ? i0 % pp : 0;
    /* segments within which both weight indices run contiguously, so the element loop vectorises */
    for (fl_index s0 = i0; s0 < i1;) {
        fl_index len = i1 - s0;
        len = wp - jw < len ? wp - jw : len;
        len = pp - jp < len ? pp - jp : len;
        /* chunks widened to double buffers, computed, narrowed back: gcc vectorises a loop of doubles, not
         * one mixing float loads and stores with double arithmetic */
        for (fl_index c0 = s0; c0 < s0 + len; c0 += FL_DIST_CHUNK) {
            const fl_index clen = s0 + len - c0 < FL_DIST_CHUNK ? s0 + len - c0 : FL_DIST_CHUNK;
            /* absent weights read as a chunk of ones: no condition in the loop (AVX2 masked loads are slow) */
            const double *FL_RESTRICT wc = ws ? ws + jw + (c0 - s0) : fl_dist_ones;
            const double *FL_RESTRICT pc = pws ? pws + jp + (c0 - s0) : fl_dist_ones;
            double xb[FL_DIST_CHUNK], yb[FL_DIST_CHUNK], lb[FL_DIST_CHUNK], gb[FL_DIST_CHUNK], hb[FL_DIST_CHUNK];
            for (fl_index k = 0; k < clen; k++) xb[k] = (double)FL_LD(xs[c0 + k]);
            for (fl_index k = 0; k < clen; k++) yb[k] = (double)FL_LD(ys[c0 + k]);
            FL_LANE_LOOP(k, l, 0, clen, {
                const double w = wc[k], pw = pc[k];
                double dloss, d2loss;
                const double loss = w * elem(xb[k], yb[k], pw, a->log_target, &dloss, &d2loss);
                lb[k] = loss;
                gb[k] = w * dloss * scale;
                if (HAS_HS) hb[k] = w * d2loss * scale;
                acc[l] += loss;
            });
            if (lr) for (fl_index k = 0; k < clen; k++) lr[c0 + k] = (T)lb[k];
            if (gr) for (fl_index k = 0; k < clen; k++) gr[c0 + k] = (T)gb[k];
            if (HAS_HS) for (fl_index k = 0; k < clen; k++) hs[c0 + k] = (T)hb[k];
        }
        s0 += len;
        jw = jw + len == wp ? 0 : jw + len;
        jp = jp + len == pp ? 0 : jp + len;
    }
    return fl_lane_sum(acc);
}

/* one out-of-line block function per loss, for the reason of the row functions above; the Hessian (asked for
 * with the gradient only) in a loop of its own. err: as elem_block's. */
typedef double (*FL_T(elem_block_fn))(const fl_elem_args *a, fl_index i0, fl_index i1, double scale, double *err);
FL_BLOCK_FN double FL_T(bce_block)(const fl_elem_args *a, fl_index i0, fl_index i1, double scale, double *err)
{
    (void)err; /* no float form */
    return a->hess && a->grad ? FL_T(elem_block)(fl_bce_elem, FL_BCE_VELEM, NULL, a, i0, i1, scale, 1, NULL)
                              : FL_T(elem_block)(fl_bce_elem, FL_BCE_VELEM, NULL, a, i0, i1, scale, 0, NULL);
}
FL_BLOCK_FN double FL_T(kl_div_block)(const fl_elem_args *a, fl_index i0, fl_index i1, double scale, double *err)
{
    /* log_target's exp(y) stays in the element form (a vector double exp flushes below 2^-1022, where
     * exp(y) (y - x) need not be negligible) */
    if (a->log_target)
        return a->hess && a->grad ? FL_T(elem_block)(fl_kl_div_elem, NULL, NULL, a, i0, i1, scale, 1, NULL)
                                  : FL_T(elem_block)(fl_kl_div_elem, NULL, NULL, a, i0, i1, scale, 0, NULL);
    /* the reductions sum the double terms of FL_KL_DIV_VELEMD where there is one (its float form where err) */
    return a->hess && a->grad
               ? FL_T(elem_block)(fl_kl_div_elem, FL_KL_DIV_VELEM, FL_KL_DIV_VELEMD, a, i0, i1, scale, 1, err)
               : FL_T(elem_block)(fl_kl_div_elem, FL_KL_DIV_VELEM, FL_KL_DIV_VELEMD, a, i0, i1, scale, 0, err);
}

/* floats: whether the block function may take a float form (then kept as FL_FLOAT_TERMS_EPS says, see
 * fl_float_terms_kept: the call again in double where its blocks' sums cancel each other) */
FL_INLINE int FL_T(elem_kernel)(FL_T(elem_block_fn) block_fn, fl_elem_args *a, int floats)
{
    const double scale = a->reduction == FL_REDUCTION_MEAN ? 1.0 / a->divisor : 1.0;
    const fl_index per_block = FL_BLOCK_ELEMENTS;
    const fl_index n_blocks = fl_n_blocks(a->n, per_block);
    const int nt = fl_threads_for(a->n_threads, a->n, n_blocks);
    fl_partials part, errs;
    if (!fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;
    if (floats && !fl_partials_init(&errs, n_blocks)) {
        fl_partials_free(&part);
        return FL_ERR_NOMEM;
    }
    double sum, unused;
    for (;;) {
        FL_FOR_BLOCKS(b, n_blocks, nt, {
            const fl_index i1 = (b + 1) * per_block < a->n ? (b + 1) * per_block : a->n;
            part.p[2 * b] = block_fn(a, b * per_block, i1, scale, floats ? &errs.p[b] : NULL);
            part.p[2 * b + 1] = 0.0;
        });
        fl_partials_sum(&part, n_blocks, &sum, &unused);
        if (!floats || fl_float_terms_kept(&errs, n_blocks, sum)) break;
        floats = 0;
    }
    fl_partials_free(&part);
    a->loss_total = fl_reduce(a->reduction, sum, a->divisor);
    return FL_OK;
}

int FL_IMPL(FL_T(fl_bce_with_logits))(fl_elem_args *a) { return FL_T(elem_kernel)(FL_T(bce_block), a, 0); }
/* the float form: float data, the reductions (no loss stored), no weights, p itself (not log_target) */
int FL_IMPL(FL_T(fl_kl_div))(fl_elem_args *a)
{
    return FL_T(elem_kernel)(FL_T(kl_div_block), a,
                             FL_KL_DIV_FLOATS && FL_ST != FL_ST_F64 && !a->loss_rows && !a->weight && !a->pos_weight &&
                                 !a->log_target);
}
