/* fastloss.h -- the C kernels of fastloss: every kernel's interface, status codes and the dispatch table.
 *
 * Design (see shared/DESIGN.md):
 *   fastloss/<family>.py   validates and normalises the input (dtype, shape, strides), allocates the outputs;
 *   fastloss/_kernels.pyx  fills one argument struct per call, releases the GIL and calls a kernel below;
 *   src_c/<family>.c       the kernels: plain C11, no Python, no allocation inside loops, OpenMP over blocks of rows.
 *
 * Every kernel takes one pointer to an argument struct (fields marked in / out) and returns a status:
 * FL_OK, or a code whose details (the first offending position and value) are in the struct. A kernel that
 * indexes by a label checks the label's range itself, so no input, however wrong, reads or writes outside
 * the arrays. On error nothing is written to the outputs: labels are checked before any output is touched.
 *
 * Each family file is compiled once per SIMD level (scalar, avx2, avx512) with that level's compiler flags;
 * its functions get the level as suffix (FL_IMPL). table.c, compiled with them, fills one fl_kernel_table per
 * level; dispatch.c picks one table at import (CPU features, or FASTLOSS_SIMD) and defines the public entry
 * points declared here, which forward to the chosen table.
 *
 * Matrices are rows of contiguous elements: element (i, j) of a matrix is data[i * row_stride + j], strides in
 * elements. Dtype: the suffix _f32 means float data, _f64 double data, _f16 binary16 and _bf16 bfloat16 data
 * (uint16_t bits, computed in float, outputs float); every sum accumulates in double.
 */
#ifndef FASTLOSS_H
#define FASTLOSS_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t fl_index;

/* status codes */
enum {
    FL_OK = 0,
    FL_ERR_INDEX = 1,     /* a class index outside [0, n_cols) that is not ignore_index: bad_position, bad_value */
    FL_ERR_NOMEM = 2,     /* a scratch allocation failed */
    FL_ERR_LABEL = 3,     /* an element outside its domain (pair kernels: a binary label outside {-1, +1}, tweedie's
                           * y < 0, gaussian_nll's var < 0): bad_position, bad_fvalue */
    FL_ERR_NEGATIVE = 4   /* a negative probability: bad_position, bad_fvalue */
};

enum { FL_REDUCTION_NONE = 0, FL_REDUCTION_SUM = 1, FL_REDUCTION_MEAN = 2 };

/* logsumexp, softmax, log_softmax over each row of x. */
typedef struct {
    const void *x;            /* in:  (n_rows, n_cols) */
    fl_index n_rows, n_cols, row_stride;
    void *out;                /* out: logsumexp: (n_rows,); softmax, log_softmax: (n_rows, n_cols) C-contiguous */
    int n_threads;            /* in:  upper bound on OpenMP threads */
} fl_rows_args;

/* Losses over rows of class scores: cross_entropy (integer or probability targets) and nll_loss. */
typedef struct {
    const void *logits;             /* in:  (n_rows, n_cols) logits, or log-probabilities for nll */
    fl_index n_rows, n_cols, row_stride;
    const int64_t *target;          /* in:  (n_rows,) class indices; NULL with probability targets */
    const void *target_prob;        /* in:  (n_rows, n_cols) probabilities, dtype of logits; or NULL */
    fl_index target_row_stride;
    const double *weight;           /* in:  (n_cols,) class weights, or NULL */
    const double *sample_weight;    /* in:  (n_rows,) sample weights, or NULL */
    int64_t ignore_index;           /* in:  rows whose target equals it count for nothing */
    double label_smoothing;         /* in:  in [0, 1] */
    int reduction;                  /* in:  FL_REDUCTION_* */
    int n_threads;                  /* in */
    void *loss_rows;                /* out: (n_rows,) per-row losses, or NULL */
    void *grad;                     /* out: (n_rows, n_cols) C-contiguous gradient of the reduced loss, or NULL */
    void *hess;                     /* out: (n_rows, n_cols) C-contiguous diagonal of its Hessian, or NULL (only
                                     *      with grad; cross_entropy kernels: nll's would be 0 and is not written) */
    int grad_half;                  /* in:  float16 / bfloat16 logits only: grad is of the logits' dtype (each
                                     *      value rounded to nearest even from float), else float; 0 otherwise */
    int grad_zeroed;                /* in:  nll: grad's memory is all zeros already (a new array from calloc,
                                     *      whose pages the OS zeroes as they are first written): only the
                                     *      targets' entries are written (float grad, no Hessian) */
    double loss_total;              /* out: the sum, or the mean (sum / sum of effective weights) */
    fl_index bad_position;          /* out: on error, the first offending row */
    int64_t bad_value;              /* out: on FL_ERR_INDEX, its target */
} fl_class_args;

/* Element-wise losses of pairs (x, y) of the same length: the binary margin losses (y in {-1, +1}) and the
 * regression losses. Kernels defined with FL_PAIR_KERNEL (common.h). */
typedef struct {
    const void *x;                  /* in:  (n,) scores or predictions, contiguous */
    const void *y;                  /* in:  (n,) labels or targets, dtype of x, contiguous */
    fl_index n;
    const double *sample_weight;    /* in:  (n,) or NULL */
    double param;                   /* in:  the loss's parameter: margin (hinge), delta (huber), beta (smooth_l1),
                                     *      quantile (pinball), eps (poisson_nll, gaussian_nll), power (tweedie),
                                     *      alpha (sigmoid_focal) */
    int flag;                       /* in:  the loss's switch: squared (hinge); FL_POISSON_* bits; full (gaussian);
                                     *      FL_TWEEDIE_* (tweedie); FL_FOCAL_* (sigmoid_focal) */
    int check_first;                /* in:  check every label (y, var) before writing anything (caller's buffer) */
    int reduction;                  /* in:  FL_REDUCTION_* */
    int n_threads;                  /* in */
    void *loss_rows;                /* out: (n,) per-element losses, or NULL */
    void *grad;                     /* out: (n,) gradient of the reduced loss, or NULL */
    double loss_total;              /* out: the sum, or the mean (sum / sum of sample weights) */
    fl_index bad_position;          /* out: on FL_ERR_LABEL, the first offending element */
    double bad_fvalue;              /* out: and its value (of y; of v for gaussian_nll) */
    void *hess;                     /* out: (n,) diagonal of the Hessian of the reduced loss, or NULL; written
                                     *      only with grad (NAME_grad_hess) */
    const void *v;                  /* in:  (n,) a third input, dtype of x: gaussian_nll's var; or NULL */
    double param2;                  /* in:  the loss's second parameter: gamma (sigmoid_focal) */
} fl_pair_args;

/* fl_pair_args.flag of the losses with more than one switch or a special case */
enum { FL_POISSON_LOG_INPUT = 1, FL_POISSON_FULL = 2 };
enum { FL_TWEEDIE_GENERAL = 0, FL_TWEEDIE_POISSON = 1, FL_TWEEDIE_GAMMA = 2 };   /* power in (1, 2), 1, 2 */
enum { FL_FOCAL_GENERAL = 0, FL_FOCAL_GAMMA_0 = 1, FL_FOCAL_GAMMA_1 = 2, FL_FOCAL_GAMMA_2 = 3 }; /* (1-p_t)^gamma */

/* A kernel of every input dtype: float32, float64, float16 and bfloat16 data (the half types are read as they
 * are and computed in float; their outputs are float). */
#define FL_DTYPES(X, name, args) X(name##_f32, args) X(name##_f64, args) X(name##_f16, args) X(name##_bf16, args)

/* The kernel list, once: X(name, argument struct). Expanded into the table, the public entry points
 * (dispatch.c) and the per-level implementations (table.c). */
#define FL_KERNEL_LIST(X)                             \
    FL_PROBABILISTIC_KERNELS(X)                       \
    FL_MARGIN_KERNELS(X)                              \
    FL_REGRESSION_KERNELS(X)                          \
    FL_DISTRIBUTION_KERNELS(X)                        \
    FL_VMATH_KERNELS(X)                               \
    FL_EVALUATE_KERNELS(X)

/* probabilistic.c */
#define FL_PROBABILISTIC_KERNELS(X)                   \
    FL_DTYPES(X, fl_logsumexp, fl_rows_args)      \
    FL_DTYPES(X, fl_softmax, fl_rows_args)        \
    FL_DTYPES(X, fl_log_softmax, fl_rows_args)    \
    FL_DTYPES(X, fl_cross_entropy, fl_class_args) \
    FL_DTYPES(X, fl_cross_entropy_prob, fl_class_args)\
    FL_DTYPES(X, fl_nll, fl_class_args)

/* margin.c */
/* Multiclass margin losses over rows of class scores with integer targets: multiclass hinge (kinds below)
 * and the top-1 zero-one loss. */
enum { FL_HINGE_CRAMMER_SINGER = 0, FL_HINGE_WESTON_WATKINS = 1 };
typedef struct {
    const void *scores;             /* in:  (n_rows, n_cols) */
    fl_index n_rows, n_cols, row_stride;
    const int64_t *target;          /* in:  (n_rows,) class indices, range-checked by the kernel */
    const double *weight;           /* in:  (n_cols,) class weights, or NULL */
    const double *sample_weight;    /* in:  (n_rows,) or NULL */
    double margin;                  /* in:  hinge margin, finite */
    int kind;                       /* in:  FL_HINGE_* */
    int p;                          /* in:  1 or 2 (weston_watkins) */
    int reduction;                  /* in:  FL_REDUCTION_* */
    int n_threads;                  /* in */
    void *loss_rows;                /* out: (n_rows,) per-row losses, or NULL */
    void *grad;                     /* out: (n_rows, n_cols) C-contiguous gradient of the reduced loss, or NULL */
    int grad_zeroed;                /* in:  crammer_singer: grad's memory is all zeros already (a new calloc'd
                                     *      array): only a row's two nonzero entries are written */
    double loss_total;              /* out: the sum, or the mean */
    fl_index bad_position;          /* out: on FL_ERR_INDEX, the first offending row */
    int64_t bad_value;              /* out: and its target */
} fl_multiclass_args;

#define FL_MARGIN_KERNELS(X)                          \
    FL_DTYPES(X, fl_zero_one, fl_pair_args)       \
    FL_DTYPES(X, fl_logistic, fl_pair_args)       \
    FL_DTYPES(X, fl_exponential, fl_pair_args)    \
    FL_DTYPES(X, fl_hinge, fl_pair_args)          \
    FL_DTYPES(X, fl_sigmoid_focal, fl_pair_args)  \
    FL_DTYPES(X, fl_zero_one_multiclass, fl_multiclass_args)\
    FL_DTYPES(X, fl_multiclass_hinge, fl_multiclass_args)

/* regression.c */
#define FL_REGRESSION_KERNELS(X)                      \
    FL_DTYPES(X, fl_mse, fl_pair_args)            \
    FL_DTYPES(X, fl_l1, fl_pair_args)             \
    FL_DTYPES(X, fl_huber, fl_pair_args)          \
    FL_DTYPES(X, fl_smooth_l1, fl_pair_args)      \
    FL_DTYPES(X, fl_log_cosh, fl_pair_args)       \
    FL_DTYPES(X, fl_pinball, fl_pair_args)        \
    FL_DTYPES(X, fl_poisson_nll, fl_pair_args)    \
    FL_DTYPES(X, fl_gaussian_nll, fl_pair_args)   \
    FL_DTYPES(X, fl_tweedie, fl_pair_args)

/* distributions.c (and binary cross-entropy, kl_div) */

/* entropy, categorical_cross_entropy, kl_divergence over each row of probabilities p (and q). */
typedef struct {
    const void *p;                  /* in:  (n_rows, n_cols) probabilities */
    fl_index n_rows, n_cols, p_row_stride;
    const void *q;                  /* in:  (n_rows, n_cols), dtype of p; NULL for entropy */
    fl_index q_row_stride;
    double log_base;                /* in:  each row's sum is divided by it: 1 for nats, log(2) for bits */
    int n_threads;                  /* in */
    void *out;                      /* out: (n_rows,) one value per row (written also on error: no caller buffer) */
    fl_index bad_position;          /* out: on FL_ERR_NEGATIVE, the first negative entry: row * n_cols + col */
    int bad_operand;                /* out: and where it is: 0 in p, 1 in q */
    double bad_fvalue;              /* out: and its value */
} fl_dist_args;

/* Element-wise losses of logits (or log-probabilities) x against targets y: binary_cross_entropy_with_logits
 * and kl_div. A weight vector w of length w_period applies to element i as w[i % w_period] (a (C,) vector
 * repeats along the rows; a full-size one has period n). */
typedef struct {
    const void *x;                  /* in:  (n,) logits (bce) or log q (kl_div), contiguous */
    const void *y;                  /* in:  (n,) targets, dtype of x, contiguous */
    fl_index n;
    const double *weight;           /* in:  (weight_period,) weight x sample_weight (bce), or NULL */
    fl_index weight_period;
    const double *pos_weight;       /* in:  (pos_weight_period,) (bce), or NULL */
    fl_index pos_weight_period;
    int log_target;                 /* in:  kl_div: y holds log p */
    int reduction;                  /* in:  FL_REDUCTION_*; MEAN divides by `divisor` */
    double divisor;                 /* in:  the mean's divisor (elements, sum of sample weights, batch size) */
    int n_threads;                  /* in */
    void *loss_rows;                /* out: (n,) per-element losses, or NULL */
    void *grad;                     /* out: (n,) gradient of the reduced loss w.r.t. x, or NULL */
    double loss_total;              /* out: the sum, or sum / divisor */
    void *hess;                     /* out: (n,) diagonal of its Hessian w.r.t. x, or NULL (only with grad) */
} fl_elem_args;

#define FL_DISTRIBUTION_KERNELS(X)                    \
    FL_DTYPES(X, fl_entropy, fl_dist_args)        \
    FL_DTYPES(X, fl_categorical_cross_entropy, fl_dist_args)\
    FL_DTYPES(X, fl_kl_divergence, fl_dist_args)  \
    FL_DTYPES(X, fl_bce_with_logits, fl_elem_args)\
    FL_DTYPES(X, fl_kl_div, fl_elem_args)

/* vmath_kernels.c: the vector math of vmath.h over arrays, at the selected SIMD level (for its tests) */
enum { FL_VMATH_EXP = 0, FL_VMATH_LOG = 1, FL_VMATH_LOG1P = 2, FL_VMATH_EXPM1 = 3 };
typedef struct {
    const void *x;                  /* in:  (n,) contiguous */
    fl_index n;
    int op;                         /* in:  FL_VMATH_* */
    void *out;                      /* out: (n,) contiguous, dtype of x */
} fl_vmath_args;
#define FL_VMATH_KERNELS(X)                           \
    X(fl_vmath_f32, fl_vmath_args)                    \
    X(fl_vmath_f64, fl_vmath_args)

/* evaluate.c */

/* The block partition of the row kernels, for callers that split a matrix into chunks (streaming, dask):
 * a chunk of whole blocks, computed alone, gives the same per-block partial sums as inside the whole matrix. */
typedef struct {
    fl_index n_cols;                /* in */
    fl_index rows_per_block;        /* out: rows per block of the row kernels (a function of n_cols only) */
    fl_index block_elements;        /* out: elements per block of the element-wise kernels */
} fl_layout_args;

/* evaluate: per row with a target t that is not ignore_index, L = logsumexp(x), loss = w_t (L - x_t) and the
 * rank g = #{j : !(x_j <= x_t)} (the logits above the target's; a nan counts as above; a nan target logit has
 * g = n_cols): a top-k hit iff g < k. Each block of rows writes its partial sums, in double, to one row of
 * block_sums: [sum of losses, sum of w_t, rows counted, hits for topk[0], ..., hits for topk[n_topk - 1]].
 * The caller adds the rows of block_sums in block order (which makes the result independent of threads and
 * of how the matrix was split into chunks of whole blocks). */
typedef struct {
    const void *logits;             /* in:  (n_rows, n_cols) */
    fl_index n_rows, n_cols, row_stride;
    const int64_t *target;          /* in:  (n_rows,) class indices */
    const double *weight;           /* in:  (n_cols,) class weights, or NULL */
    int64_t ignore_index;           /* in */
    const int64_t *topk;            /* in:  (n_topk,) each >= 1 */
    fl_index n_topk;
    int n_threads;                  /* in */
    double *block_sums;             /* out: (ceil(n_rows / rows_per_block), 3 + n_topk) C-contiguous */
    fl_index bad_position;          /* out: on FL_ERR_INDEX, the first offending row */
    int64_t bad_value;              /* out: and its target */
} fl_eval_args;

/* evaluate_binary: per element with margin m = y s (y in {-1, +1}) and sample weight sw (1 if none), the
 * block sums [sum sw, sum sw log(1 + exp(-m)), sum sw max(0, 1 - m), sum sw exp(-m), sum sw [sign(s) == y]]
 * (sign(s) = +1 where s > 0, else -1), one row of block_sums per block of block_elements elements. */
typedef struct {
    const void *scores;             /* in:  (n,) contiguous */
    const void *y;                  /* in:  (n,) labels, dtype of scores, contiguous */
    fl_index n;
    const double *sample_weight;    /* in:  (n,) or NULL */
    int n_threads;                  /* in */
    double *block_sums;             /* out: (ceil(n / block_elements), 5) C-contiguous */
    fl_index bad_position;          /* out: on FL_ERR_LABEL, the first label outside {-1, +1} */
    double bad_fvalue;              /* out: and its value */
} fl_eval_binary_args;

/* The per-block sums of a class kernel (cross_entropy, nll) over a matrix, by running the kernel on each block
 * alone with reduction "sum" (its total is then that block's partial sum, bit for bit); the blocks run in
 * parallel. Targets are checked first, row by row; weight_sum continues the running sum, row by row, of the
 * effective weights w_t sw_i of the rows that count: the divisor of "mean", as the kernel forms it. */
typedef struct {
    fl_class_args rows;             /* in:  the whole matrix and its options; out: bad_position, bad_value */
    size_t elem_size;               /* in:  bytes per logit (4: float, 8: double) */
    int (*kernel)(fl_class_args *a);/* in:  a class kernel with integer targets */
    double *block_sums;             /* out: (ceil(n_rows / rows_per_block),) */
    double weight_sum;              /* in/out: continued over the rows that count */
} fl_class_blocks_args;

#define FL_EVALUATE_KERNELS(X)                        \
    X(fl_block_layout, fl_layout_args)                \
    FL_DTYPES(X, fl_evaluate, fl_eval_args)       \
    FL_DTYPES(X, fl_evaluate_binary, fl_eval_binary_args)\
    X(fl_class_block_sums, fl_class_blocks_args)

#define FL_TABLE_FIELD(name, args) int (*name)(args *a);
typedef struct {
    const char *level;
    FL_KERNEL_LIST(FL_TABLE_FIELD)
} fl_kernel_table;
#undef FL_TABLE_FIELD

/* Public entry points: forward to the table chosen by fl_select_simd. Thread-safe once selected. */
#define FL_DECLARE_KERNEL(name, args) int name(args *a);
FL_KERNEL_LIST(FL_DECLARE_KERNEL)
#undef FL_DECLARE_KERNEL

/* Chooses the SIMD level: "scalar", "avx2", "avx512", or NULL/"" for the best the CPU has.
 * Returns 0, or -1 if that level was not built or the CPU lacks it (the choice is then left unchanged). */
int fl_select_simd(const char *level);
const char *fl_simd_level(void);          /* the level in use */
int fl_simd_available(const char *level); /* 1 if built and supported by this CPU */
int fl_openmp_enabled(void);              /* 1 if built with OpenMP */
int fl_max_threads(void);                 /* omp_get_max_threads(), or 1 */
const char *fl_compiler(void);            /* the compiler that built the kernels */

/* ---- the benchmark's floors (bench_kernels.c): the pace of the memory system ------------------------------
 * fl_stream_read_f32 sums x[0:n) (a streaming read in vector lanes; sum is only there so that the read is not
 * optimised away); fl_stream_write_f32 sets out[0:n) to value (plain vector stores). Both over fixed blocks,
 * on up to n_threads threads, at the SIMD level in use. Not kernels of the table: not losses. */
typedef struct {
    const float *x;                 /* in:  (n,), fl_stream_read_f32 */
    float *out;                     /* out: (n,), fl_stream_write_f32 */
    fl_index n;                     /* in */
    double value;                   /* in:  fl_stream_write_f32's fill value */
    int n_threads;                  /* in */
    double sum;                     /* out: fl_stream_read_f32: the sum of x */
} fl_stream_args;

int fl_stream_read_f32(fl_stream_args *a);
int fl_stream_write_f32(fl_stream_args *a);

#endif
