/* evaluate.c -- evaluation at scale: evaluate_binary (logistic, hinge and exponential losses and accuracy of
 * margin scores), the block layout query, and the per-block sums of the class kernels. These kernels (and evaluate, in
 * probabilistic_tpl.h) write per-block partial sums instead of a total: the caller adds them in block order, so a matrix split into chunks of whole blocks
 * (a file read chunk by chunk, a dask array) gives the same bits as the whole matrix in one call.
 * Compiled once per SIMD level; the dtype kernels are written once in evaluate_tpl.h. */
#include "common.h"
#include "vmath.h"
#include "margin_velem.h"

int FL_IMPL(fl_block_layout)(fl_layout_args *a)
{
    a->rows_per_block = fl_rows_per_block(a->n_cols);
    a->block_elements = FL_BLOCK_ELEMENTS;
    return FL_OK;
}

/* ---- the terms of one margin score s with label y and sample weight sw, added to sums[0 .. 5) ------------
 * (float64 data, and the last elements of a block of float data; the rest: fl_binary_vterms)
 * m = y s;  logistic = log(1 + exp(-m)) = log1p(exp(-|m|)) + max(-m, 0) (no overflow for any m);
 * hinge = max(0, 1 - m) (nan stays nan);  exponential = exp(-m);  correct = [(s > 0 ? 1 : -1) == y]. */
enum { FL_BINARY_SUMS = 5 };

FL_INLINE void fl_binary_terms(double s, double y, double sw, double *FL_RESTRICT sums)
{
    const double m = y * s;
    const double h = 1.0 - m;
    sums[0] += sw;
    sums[1] += sw * (log1p(exp(-fabs(m))) + (m < 0.0 ? -m : 0.0));
    sums[2] += sw * (h > 0.0 || h != h ? h : 0.0);
    sums[3] += sw * exp(-m);
    sums[4] += sw * (double)((s > 0.0 ? 1.0 : -1.0) == y);
}

#ifdef FL_VF_N
/* The terms of elements [i0, i1) of float data (storage st), FL__XU vectors at a time, added to sums: each term
 * from the separate loss's own vector form (logistic_loss, hinge_loss, exponential_loss, zero_one_loss of float
 * data), weighted and summed in double, in lanes added in a fixed order at the end: the same bits whatever the
 * threads. Returns where it stopped (the rest: fl_binary_terms). It was libm's exp and log1p in double an
 * element: 10M float32 scores, 2 threads, 272 ms where logistic_loss alone took 7 ms. */
FL_INLINE fl_index fl_binary_vterms(const void *sc, const void *y, const double *sw, fl_index i0, fl_index i1,
                                    double *FL_RESTRICT sums, const int st)
{
    enum { STEP = FL__XU * FL_VF_N };
    fl_vd lo[FL_BINARY_SUMS], hi[FL_BINARY_SUMS];
    for (int k = 0; k < FL_BINARY_SUMS; k++) lo[k] = hi[k] = (fl_vd){0};
    fl_index i = i0;
    for (; i + STEP <= i1; i += STEP) {
        fl_vf xv[FL__XU], yv[FL__XU], t[FL_BINARY_SUMS][FL__XU], d[FL__XU], h[FL__XU];
        FL__EACH(u, FL__XU) {
            xv[u] = fl__vf_load_st(sc, i + u * FL_VF_N, st);
            yv[u] = fl__vf_load_st(y, i + u * FL_VF_N, st);
        }
        fl_logistic_velem(xv, yv, t[1], d, h, 0.0f, 0, FL__XU);
        fl_hinge_velem(xv, yv, t[2], d, h, 1.0f, 0, FL__XU);
        fl_exponential_velem(xv, yv, t[3], d, h, 0.0f, 0, FL__XU);
        fl_zero_one_velem(xv, yv, t[4], d, h, 0.0f, 0, FL__XU);
        FL__EACH(u, FL__XU) {
            t[0][u] = (fl_vf){0} + 1.0f;
            t[4][u] = 1.0f - t[4][u]; /* correct */
            if (sw) {
                const fl_vd w0 = fl__vd_load(sw + i + u * FL_VF_N), w1 = fl__vd_load(sw + i + u * FL_VF_N + FL_VD_N);
                for (int k = 0; k < FL_BINARY_SUMS; k++) {
                    fl_vd l, hh;
                    fl__vf_widen(t[k][u], &l, &hh);
                    lo[k] += l * w0;
                    hi[k] += hh * w1;
                }
            } else
                for (int k = 0; k < FL_BINARY_SUMS; k++) fl__vf_add_widened(&lo[k], &hi[k], t[k][u]);
        }
    }
    for (int k = 0; k < FL_BINARY_SUMS; k++) {
        const fl_vd v = lo[k] + hi[k];
        for (int l = 0; l < FL_VD_N; l++) sums[k] += v[l];
    }
    return i;
}
#endif

#define FL_TEMPLATE "evaluate_tpl.h"
#include "each_dtype.h"

/* ---- per-block sums of a class kernel ---------------------------------------------------------------------
 * The kernel's "sum" over a matrix is the sum, in block order, of its blocks' partial sums; run on one block
 * alone it returns that block's partial sum exactly (0.0 + p = p). So the partials below, added in order,
 * give the kernel's own total, also when the matrix comes in chunks of whole blocks. The divisor of "mean" is
 * continued row by row as the kernel forms it (w_t * sw_i, added in row order). */
int FL_IMPL(fl_class_block_sums)(fl_class_blocks_args *a)
{
    const fl_class_args *r = &a->rows;
    int status = fl_check_class_targets(r->target, r->n_rows, r->n_cols, r->ignore_index,
                                        &a->rows.bad_position, &a->rows.bad_value);
    if (status != FL_OK) return status;
    double den = a->weight_sum;
    for (fl_index i = 0; i < r->n_rows; i++) {
        const int64_t t = r->target[i];
        if (t == r->ignore_index) continue;
        den += (r->weight ? r->weight[t] : 1.0) * (r->sample_weight ? r->sample_weight[i] : 1.0);
    }
    a->weight_sum = den;
    const fl_index rpb = fl_rows_per_block(r->n_cols);
    const fl_index n_blocks = fl_n_blocks(r->n_rows, rpb);
    const int nt = fl_threads_for(r->n_threads, r->n_rows * r->n_cols, n_blocks);
    int failed = FL_OK;
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index r0 = b * rpb, r1 = r0 + rpb < r->n_rows ? r0 + rpb : r->n_rows;
        fl_class_args c = *r;
        c.logits = (const char *)r->logits + (size_t)(r0 * r->row_stride) * a->elem_size;
        c.n_rows = r1 - r0;
        c.target = r->target + r0;
        c.sample_weight = r->sample_weight ? r->sample_weight + r0 : NULL;
        c.reduction = FL_REDUCTION_SUM;
        c.n_threads = 1;
        c.loss_rows = NULL;
        c.grad = NULL;
        c.hess = NULL;
        const int st = a->kernel(&c);
        a->block_sums[b] = c.loss_total;
        if (st != FL_OK) {
            _Pragma("omp atomic write")
            failed = st;
        }
    });
    return failed;
}
