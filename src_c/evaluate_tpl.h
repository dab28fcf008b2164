/* evaluate_tpl.h -- the evaluation kernels (evaluate, evaluate_binary) for one input dtype.
 * Included by evaluate.c through each_dtype.h (S, T, FL_LD, FL_ST, FL_T, FL_TC: see there). */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include evaluate_tpl.h through each_dtype.h"
#endif
/* T_SUM_EXP(x, n, shift, next): sum of exp(x[j] - shift) in double, prefetching next[0..n) */
#define T_SUM_EXP FL_T(fl_sum_exp_shifted)

/* One row, one read from memory: in chunks of FL_EVAL_CHUNK elements (still in L1 for the second look), the
 * chunk's max, nan flag and count of elements not <= xt, then its sum of exp(x - m), s rescaled when the
 * running max m grows. Edge cases: a nan anywhere gives m = nan; m = +inf or -inf leaves s unused (the loss
 * is then nan, as torch's cross_entropy). rank = #{j : !(x_j <= xt)}: a nan counts as above the target, and a
 * nan xt makes every element count (rank = n: never in any top k). */
static inline void FL_T(eval_row)(const S *FL_RESTRICT x, fl_index n, T xt, double *m_out, double *s_out,
                                  fl_index *rank_out)
{
    T m = -INFINITY;
    double s = 0.0;
    fl_index rank = 0;
    int has_nan = 0;
    for (fl_index j0 = 0; j0 < n; j0 += FL_EVAL_CHUNK) {
        const fl_index len = n - j0 < FL_EVAL_CHUNK ? n - j0 : FL_EVAL_CHUNK;
        const S *FL_RESTRICT xc = x + j0;
        T cm = -INFINITY;
        int cnan = 0;
        fl_index above = 0;
        for (fl_index j = 0; j < len; j++) {
            const T v = FL_LD(xc[j]);
            cm = v > cm ? v : cm;
            cnan |= v != v;
            above += !(v <= xt);
        }
        rank += above;
        has_nan |= cnan;
        if (has_nan) continue; /* the loss is nan; only the rank still needs the rest of the row */
        if (cm > m) {
            /* m = -inf before: nothing summed yet (and -inf - -inf would be nan) */
            s = m == -INFINITY ? 0.0 : s * exp((double)m - (double)cm);
            m = cm;
        }
        if (isfinite(m)) s += T_SUM_EXP(xc, len, m, xc + len);
    }
    *m_out = has_nan ? (double)NAN : (double)m;
    *s_out = s;
    *rank_out = rank;
}

/* Sums of one block of rows [r0, r1) into out[0 .. 3 + n_topk). Targets were checked. */
static void FL_T(evaluate_block)(const fl_eval_args *a, fl_index r0, fl_index r1, double *FL_RESTRICT out)
{
    const S *X = (const S *)a->logits;
    double loss = 0.0, weight = 0.0, counted = 0.0;
    for (fl_index k = 0; k < a->n_topk; k++) out[3 + k] = 0.0;
    for (fl_index i = r0; i < r1; i++) {
        const int64_t t = a->target[i];
        if (t == a->ignore_index) continue;
        const S *xi = X + i * a->row_stride;
        double m, s;
        fl_index rank;
        FL_T(eval_row)(xi, a->n_cols, FL_LD(xi[t]), &m, &s, &rank);
        const double wt = a->weight ? a->weight[t] : 1.0;
        /* L = m + log s; a row with +inf, only -inf, or nan gives nan (as cross_entropy) */
        const double L = isfinite(m) ? m + log(s) : (double)NAN;
        loss += wt * (L - (double)FL_LD(xi[t]));
        weight += wt;
        counted += 1.0;
        for (fl_index k = 0; k < a->n_topk; k++) out[3 + k] += (double)(rank < a->topk[k]);
    }
    out[0] = loss;
    out[1] = weight;
    out[2] = counted;
}

int FL_IMPL(FL_T(fl_evaluate))(fl_eval_args *a)
{
    int status = fl_check_class_targets(a->target, a->n_rows, a->n_cols, a->ignore_index, &a->bad_position,
                                        &a->bad_value);
    if (status != FL_OK) return status;
    const fl_index width = 3 + a->n_topk;
    const fl_index rpb = fl_rows_per_block(a->n_cols);
    const fl_index n_blocks = fl_n_blocks(a->n_rows, rpb);
    const int nt = fl_threads_for(a->n_threads, a->n_rows * a->n_cols, n_blocks);
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index r1 = (b + 1) * rpb < a->n_rows ? (b + 1) * rpb : a->n_rows;
        FL_T(evaluate_block)(a, b * rpb, r1, a->block_sums + b * width);
    });
    return FL_OK;
}

/* ---- evaluate_binary ------------------------------------------------------------------------------------- */

int FL_IMPL(FL_T(fl_evaluate_binary))(fl_eval_binary_args *a)
{
    const S *SC = (const S *)a->scores;
    const S *Y = (const S *)a->y;
    for (fl_index i = 0; i < a->n; i++)
        if (!FL_IS_LABEL((double)FL_LD(Y[i]))) {
            a->bad_position = i;
            a->bad_fvalue = (double)FL_LD(Y[i]);
            return FL_ERR_LABEL;
        }
    const fl_index per_block = FL_BLOCK_ELEMENTS;
    const fl_index n_blocks = fl_n_blocks(a->n, per_block);
    const int nt = fl_threads_for(a->n_threads, a->n, n_blocks);
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index i1 = (b + 1) * per_block < a->n ? (b + 1) * per_block : a->n;
        double sums[FL_BINARY_SUMS] = {0.0};
        for (fl_index i = b * per_block; i < i1; i++)
            fl_binary_terms((double)FL_LD(SC[i]), (double)FL_LD(Y[i]), a->sample_weight ? a->sample_weight[i] : 1.0, sums);
        memcpy(a->block_sums + b * FL_BINARY_SUMS, sums, sizeof sums);
    });
    return FL_OK;
}
#undef T_SUM_EXP
