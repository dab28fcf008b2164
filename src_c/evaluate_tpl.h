/* evaluate_tpl.h -- evaluate_binary for one input dtype (evaluate, which shares cross_entropy's row stats, is in
 * probabilistic_tpl.h).
 * Included by evaluate.c through each_dtype.h (S, T, FL_LD, FL_ST, FL_T, FL_TC: see there). */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include evaluate_tpl.h through each_dtype.h"
#endif
/* ---- evaluate_binary ------------------------------------------------------------------------------------- */

int FL_IMPL(FL_T(fl_evaluate_binary))(fl_eval_binary_args *a)
{
    const S *SC = (const S *)a->scores;
    const S *Y = (const S *)a->y;
    /* the labels first, chunk by chunk, counted branch-free (a loop with an early exit does not vectorise) */
    for (fl_index c0 = 0; c0 < a->n; c0 += FL_BLOCK_ELEMENTS) {
        const fl_index c1 = a->n - c0 > FL_BLOCK_ELEMENTS ? c0 + FL_BLOCK_ELEMENTS : a->n;
        int n_bad = 0;
        for (fl_index i = c0; i < c1; i++) n_bad += !FL_IS_LABEL(FL_LD(Y[i]));
        if (n_bad)
            for (fl_index i = c0; i < c1; i++)
                if (!FL_IS_LABEL((double)FL_LD(Y[i]))) {
                    a->bad_position = i;
                    a->bad_fvalue = (double)FL_LD(Y[i]);
                    return FL_ERR_LABEL;
                }
    }
    const fl_index per_block = FL_BLOCK_ELEMENTS;
    const fl_index n_blocks = fl_n_blocks(a->n, per_block);
    const int nt = fl_threads_for(a->n_threads, a->n, n_blocks);
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index i1 = (b + 1) * per_block < a->n ? (b + 1) * per_block : a->n;
        double sums[FL_BINARY_SUMS] = {0.0};
        fl_index i = b * per_block;
#ifdef FL_VF_N
        if (FL_ST != FL_ST_F64) i = fl_binary_vterms(SC, Y, a->sample_weight, i, i1, sums, FL_ST);
#endif
        for (; i < i1; i++)
            fl_binary_terms((double)FL_LD(SC[i]), (double)FL_LD(Y[i]), a->sample_weight ? a->sample_weight[i] : 1.0, sums);
        memcpy(a->block_sums + b * FL_BINARY_SUMS, sums, sizeof sums);
    });
    return FL_OK;
}
