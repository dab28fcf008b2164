# The C interface of fastloss: mirrors src_c/fastloss.h (keep the two in step; FL_DTYPES there is written out
# here: _f32, _f64, _f16, _bf16).
from libc.stdint cimport int64_t

cdef extern from "fastloss.h":
    ctypedef Py_ssize_t fl_index

    enum:
        FL_OK
        FL_ERR_INDEX
        FL_ERR_NOMEM
        FL_ERR_LABEL
        FL_ERR_NEGATIVE

    enum:
        FL_REDUCTION_NONE
        FL_REDUCTION_SUM
        FL_REDUCTION_MEAN

    ctypedef struct fl_rows_args:
        const void *x
        fl_index n_rows, n_cols, row_stride
        void *out
        int n_threads

    ctypedef struct fl_class_args:
        const void *logits
        fl_index n_rows, n_cols, row_stride
        const int64_t *target
        const void *target_prob
        fl_index target_row_stride
        const double *weight
        const double *sample_weight
        int64_t ignore_index
        double label_smoothing
        int reduction
        int n_threads
        void *loss_rows
        void *grad
        void *hess
        int grad_half
        int grad_zeroed
        double loss_total
        fl_index bad_position
        int64_t bad_value

    ctypedef struct fl_pair_args:
        const void *x
        const void *y
        fl_index n
        const double *sample_weight
        double param
        int flag
        int check_first
        int reduction
        int n_threads
        void *loss_rows
        void *grad
        double loss_total
        fl_index bad_position
        double bad_fvalue
        void *hess
        const void *v
        double param2

    # fl_pair_args.flag of poisson_nll, tweedie, sigmoid_focal
    enum:
        FL_POISSON_LOG_INPUT
        FL_POISSON_FULL
        FL_TWEEDIE_GENERAL
        FL_TWEEDIE_POISSON
        FL_TWEEDIE_GAMMA
        FL_FOCAL_GENERAL
        FL_FOCAL_GAMMA_0
        FL_FOCAL_GAMMA_1
        FL_FOCAL_GAMMA_2

    ctypedef struct fl_dist_args:
        const void *p
        fl_index n_rows, n_cols, p_row_stride
        const void *q
        fl_index q_row_stride
        double log_base
        int n_threads
        void *out
        fl_index bad_position
        int bad_operand
        double bad_fvalue

    ctypedef struct fl_elem_args:
        const void *x
        const void *y
        fl_index n
        const double *weight
        fl_index weight_period
        const double *pos_weight
        fl_index pos_weight_period
        int log_target
        int reduction
        double divisor
        int n_threads
        void *loss_rows
        void *grad
        double loss_total
        void *hess

    # probabilistic.c
    int fl_logsumexp_f32(fl_rows_args *a) noexcept nogil
    int fl_logsumexp_f64(fl_rows_args *a) noexcept nogil
    int fl_logsumexp_f16(fl_rows_args *a) noexcept nogil
    int fl_logsumexp_bf16(fl_rows_args *a) noexcept nogil
    int fl_softmax_f32(fl_rows_args *a) noexcept nogil
    int fl_softmax_f64(fl_rows_args *a) noexcept nogil
    int fl_softmax_f16(fl_rows_args *a) noexcept nogil
    int fl_softmax_bf16(fl_rows_args *a) noexcept nogil
    int fl_log_softmax_f32(fl_rows_args *a) noexcept nogil
    int fl_log_softmax_f64(fl_rows_args *a) noexcept nogil
    int fl_log_softmax_f16(fl_rows_args *a) noexcept nogil
    int fl_log_softmax_bf16(fl_rows_args *a) noexcept nogil
    int fl_cross_entropy_f32(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_f64(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_f16(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_bf16(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_prob_f32(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_prob_f64(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_prob_f16(fl_class_args *a) noexcept nogil
    int fl_cross_entropy_prob_bf16(fl_class_args *a) noexcept nogil
    int fl_nll_f32(fl_class_args *a) noexcept nogil
    int fl_nll_f64(fl_class_args *a) noexcept nogil
    int fl_nll_f16(fl_class_args *a) noexcept nogil
    int fl_nll_bf16(fl_class_args *a) noexcept nogil

    # margin.c
    enum:
        FL_HINGE_CRAMMER_SINGER
        FL_HINGE_WESTON_WATKINS

    ctypedef struct fl_multiclass_args:
        const void *scores
        fl_index n_rows, n_cols, row_stride
        const int64_t *target
        const double *weight
        const double *sample_weight
        double margin
        int kind
        int p
        int reduction
        int n_threads
        void *loss_rows
        void *grad
        int grad_zeroed
        double loss_total
        fl_index bad_position
        int64_t bad_value

    int fl_zero_one_f32(fl_pair_args *a) noexcept nogil
    int fl_zero_one_f64(fl_pair_args *a) noexcept nogil
    int fl_zero_one_f16(fl_pair_args *a) noexcept nogil
    int fl_zero_one_bf16(fl_pair_args *a) noexcept nogil
    int fl_logistic_f32(fl_pair_args *a) noexcept nogil
    int fl_logistic_f64(fl_pair_args *a) noexcept nogil
    int fl_logistic_f16(fl_pair_args *a) noexcept nogil
    int fl_logistic_bf16(fl_pair_args *a) noexcept nogil
    int fl_exponential_f32(fl_pair_args *a) noexcept nogil
    int fl_exponential_f64(fl_pair_args *a) noexcept nogil
    int fl_exponential_f16(fl_pair_args *a) noexcept nogil
    int fl_exponential_bf16(fl_pair_args *a) noexcept nogil
    int fl_hinge_f32(fl_pair_args *a) noexcept nogil
    int fl_hinge_f64(fl_pair_args *a) noexcept nogil
    int fl_hinge_f16(fl_pair_args *a) noexcept nogil
    int fl_hinge_bf16(fl_pair_args *a) noexcept nogil
    int fl_zero_one_multiclass_f32(fl_multiclass_args *a) noexcept nogil
    int fl_zero_one_multiclass_f64(fl_multiclass_args *a) noexcept nogil
    int fl_zero_one_multiclass_f16(fl_multiclass_args *a) noexcept nogil
    int fl_zero_one_multiclass_bf16(fl_multiclass_args *a) noexcept nogil
    int fl_multiclass_hinge_f32(fl_multiclass_args *a) noexcept nogil
    int fl_multiclass_hinge_f64(fl_multiclass_args *a) noexcept nogil
    int fl_multiclass_hinge_f16(fl_multiclass_args *a) noexcept nogil
    int fl_multiclass_hinge_bf16(fl_multiclass_args *a) noexcept nogil
    int fl_sigmoid_focal_f32(fl_pair_args *a) noexcept nogil
    int fl_sigmoid_focal_f64(fl_pair_args *a) noexcept nogil
    int fl_sigmoid_focal_f16(fl_pair_args *a) noexcept nogil
    int fl_sigmoid_focal_bf16(fl_pair_args *a) noexcept nogil

    # regression.c
    int fl_mse_f32(fl_pair_args *a) noexcept nogil
    int fl_mse_f64(fl_pair_args *a) noexcept nogil
    int fl_mse_f16(fl_pair_args *a) noexcept nogil
    int fl_mse_bf16(fl_pair_args *a) noexcept nogil
    int fl_l1_f32(fl_pair_args *a) noexcept nogil
    int fl_l1_f64(fl_pair_args *a) noexcept nogil
    int fl_l1_f16(fl_pair_args *a) noexcept nogil
    int fl_l1_bf16(fl_pair_args *a) noexcept nogil
    int fl_huber_f32(fl_pair_args *a) noexcept nogil
    int fl_huber_f64(fl_pair_args *a) noexcept nogil
    int fl_huber_f16(fl_pair_args *a) noexcept nogil
    int fl_huber_bf16(fl_pair_args *a) noexcept nogil
    int fl_smooth_l1_f32(fl_pair_args *a) noexcept nogil
    int fl_smooth_l1_f64(fl_pair_args *a) noexcept nogil
    int fl_smooth_l1_f16(fl_pair_args *a) noexcept nogil
    int fl_smooth_l1_bf16(fl_pair_args *a) noexcept nogil
    int fl_log_cosh_f32(fl_pair_args *a) noexcept nogil
    int fl_log_cosh_f64(fl_pair_args *a) noexcept nogil
    int fl_log_cosh_f16(fl_pair_args *a) noexcept nogil
    int fl_log_cosh_bf16(fl_pair_args *a) noexcept nogil
    int fl_pinball_f32(fl_pair_args *a) noexcept nogil
    int fl_pinball_f64(fl_pair_args *a) noexcept nogil
    int fl_pinball_f16(fl_pair_args *a) noexcept nogil
    int fl_pinball_bf16(fl_pair_args *a) noexcept nogil
    int fl_poisson_nll_f32(fl_pair_args *a) noexcept nogil
    int fl_poisson_nll_f64(fl_pair_args *a) noexcept nogil
    int fl_poisson_nll_f16(fl_pair_args *a) noexcept nogil
    int fl_poisson_nll_bf16(fl_pair_args *a) noexcept nogil
    int fl_gaussian_nll_f32(fl_pair_args *a) noexcept nogil
    int fl_gaussian_nll_f64(fl_pair_args *a) noexcept nogil
    int fl_gaussian_nll_f16(fl_pair_args *a) noexcept nogil
    int fl_gaussian_nll_bf16(fl_pair_args *a) noexcept nogil
    int fl_tweedie_f32(fl_pair_args *a) noexcept nogil
    int fl_tweedie_f64(fl_pair_args *a) noexcept nogil
    int fl_tweedie_f16(fl_pair_args *a) noexcept nogil
    int fl_tweedie_bf16(fl_pair_args *a) noexcept nogil

    # distributions.c
    int fl_entropy_f32(fl_dist_args *a) noexcept nogil
    int fl_entropy_f64(fl_dist_args *a) noexcept nogil
    int fl_entropy_f16(fl_dist_args *a) noexcept nogil
    int fl_entropy_bf16(fl_dist_args *a) noexcept nogil
    int fl_categorical_cross_entropy_f32(fl_dist_args *a) noexcept nogil
    int fl_categorical_cross_entropy_f64(fl_dist_args *a) noexcept nogil
    int fl_categorical_cross_entropy_f16(fl_dist_args *a) noexcept nogil
    int fl_categorical_cross_entropy_bf16(fl_dist_args *a) noexcept nogil
    int fl_kl_divergence_f32(fl_dist_args *a) noexcept nogil
    int fl_kl_divergence_f64(fl_dist_args *a) noexcept nogil
    int fl_kl_divergence_f16(fl_dist_args *a) noexcept nogil
    int fl_kl_divergence_bf16(fl_dist_args *a) noexcept nogil
    int fl_bce_with_logits_f32(fl_elem_args *a) noexcept nogil
    int fl_bce_with_logits_f64(fl_elem_args *a) noexcept nogil
    int fl_bce_with_logits_f16(fl_elem_args *a) noexcept nogil
    int fl_bce_with_logits_bf16(fl_elem_args *a) noexcept nogil
    int fl_kl_div_f32(fl_elem_args *a) noexcept nogil
    int fl_kl_div_f64(fl_elem_args *a) noexcept nogil
    int fl_kl_div_f16(fl_elem_args *a) noexcept nogil
    int fl_kl_div_bf16(fl_elem_args *a) noexcept nogil


    ctypedef struct fl_vmath_args:
        const void *x
        fl_index n
        int op
        void *out

    int fl_vmath_f32(fl_vmath_args *a) noexcept nogil
    int fl_vmath_f64(fl_vmath_args *a) noexcept nogil

    # ---- evaluation ---- (evaluate.c)
    ctypedef struct fl_layout_args:
        fl_index n_cols
        fl_index rows_per_block
        fl_index block_elements

    ctypedef struct fl_eval_args:
        const void *logits
        fl_index n_rows, n_cols, row_stride
        const int64_t *target
        const double *weight
        int64_t ignore_index
        const int64_t *topk
        fl_index n_topk
        int n_threads
        double *block_sums
        fl_index bad_position
        int64_t bad_value

    ctypedef struct fl_eval_binary_args:
        const void *scores
        const void *y
        fl_index n
        const double *sample_weight
        int n_threads
        double *block_sums
        fl_index bad_position
        double bad_fvalue

    ctypedef struct fl_class_blocks_args:
        fl_class_args rows
        size_t elem_size
        int (*kernel)(fl_class_args *a) noexcept nogil
        double *block_sums
        double weight_sum

    int fl_block_layout(fl_layout_args *a) noexcept nogil
    int fl_evaluate_f32(fl_eval_args *a) noexcept nogil
    int fl_evaluate_f64(fl_eval_args *a) noexcept nogil
    int fl_evaluate_f16(fl_eval_args *a) noexcept nogil
    int fl_evaluate_bf16(fl_eval_args *a) noexcept nogil
    int fl_evaluate_binary_f32(fl_eval_binary_args *a) noexcept nogil
    int fl_evaluate_binary_f64(fl_eval_binary_args *a) noexcept nogil
    int fl_evaluate_binary_f16(fl_eval_binary_args *a) noexcept nogil
    int fl_evaluate_binary_bf16(fl_eval_binary_args *a) noexcept nogil
    int fl_class_block_sums(fl_class_blocks_args *a) noexcept nogil


    int fl_select_simd(const char *level)
    const char *fl_simd_level()
    int fl_simd_available(const char *level)
    int fl_openmp_enabled()
    int fl_max_threads()
    const char *fl_compiler()


# ---- process behaviour: mirrors src_c/process.h ----
cdef extern from "process.h":
    int fl_fork_serial  # volatile in C
    int fl_default_threads() noexcept nogil
    void fl_set_thread_settings(int override_threads, int env_threads, int cpus, int omp_env_set) noexcept nogil
    void fl_process_init() noexcept nogil
    int fl_interrupt_arm() noexcept nogil
    int fl_interrupt_disarm() noexcept nogil
    int fl_fresh_watch_output(void *p, long nbytes, long slow_ns) noexcept nogil
    void fl_fresh_clear() noexcept nogil
    int fl_small_pages(void *p, long nbytes) noexcept nogil


# ---- the benchmark's floors (src_c/bench_kernels.c) ----
cdef extern from "fastloss.h":
    ctypedef struct fl_stream_args:
        const float *x
        float *out
        fl_index n
        double value
        int n_threads
        double sum

    int fl_stream_read_f32(fl_stream_args *a) noexcept nogil
    int fl_stream_write_f32(fl_stream_args *a) noexcept nogil
