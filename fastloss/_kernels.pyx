# cython: language_level=3
"""The bridge between the Python API and the C kernels.

Design: the Python modules (fastloss/<family>.py) have already validated every input: dtypes are float32 or
float64, matrices have a contiguous last axis, targets are int64, weights float64, output buffers are of the
right size and C-contiguous. This module only fills the kernel's argument struct from typed memoryviews
(one specialisation per dtype through the fused type `real`), releases the GIL, calls the kernel and hands
back its status. It holds no validation and no math.
"""
from libc.stdint cimport int64_t

ctypedef fused real:
    float
    double

ctypedef int (*rows_kernel)(fl_rows_args *a) noexcept nogil
ctypedef int (*class_kernel)(fl_class_args *a) noexcept nogil

# op codes for rows() and class_loss(): index into these tables (float, double)
cdef enum:
    LOGSUMEXP = 0
    SOFTMAX = 1
    LOG_SOFTMAX = 2
    CROSS_ENTROPY = 0
    CROSS_ENTROPY_PROB = 1
    NLL = 2
cdef rows_kernel ROWS_F32[3]
cdef rows_kernel ROWS_F64[3]
ROWS_F32[:] = [fl_logsumexp_f32, fl_softmax_f32, fl_log_softmax_f32]
ROWS_F64[:] = [fl_logsumexp_f64, fl_softmax_f64, fl_log_softmax_f64]
cdef class_kernel CLASS_F32[3]
cdef class_kernel CLASS_F64[3]
CLASS_F32[:] = [fl_cross_entropy_f32, fl_cross_entropy_prob_f32, fl_nll_f32]
CLASS_F64[:] = [fl_cross_entropy_f64, fl_cross_entropy_prob_f64, fl_nll_f64]
OPS = {"logsumexp": LOGSUMEXP, "softmax": SOFTMAX, "log_softmax": LOG_SOFTMAX,
       "cross_entropy": CROSS_ENTROPY, "cross_entropy_prob": CROSS_ENTROPY_PROB, "nll": NLL}

STATUS_OK = FL_OK
STATUS_INDEX = FL_ERR_INDEX
STATUS_NOMEM = FL_ERR_NOMEM
REDUCTIONS = {"none": FL_REDUCTION_NONE, "sum": FL_REDUCTION_SUM, "mean": FL_REDUCTION_MEAN}


def rows(int op, const real[:, :] x, real[::1] out, int n_threads):
    """Row-wise logsumexp (out: n_rows) or softmax / log_softmax (out: n_rows * n_cols, C order)."""
    cdef fl_rows_args a
    cdef int status
    a.x = &x[0, 0]
    a.n_rows = x.shape[0]
    a.n_cols = x.shape[1]
    a.row_stride = x.strides[0] // sizeof(real)
    a.out = &out[0]
    a.n_threads = n_threads
    cdef rows_kernel fn = ROWS_F32[op] if real is float else ROWS_F64[op]
    with nogil:
        status = fn(&a)
    return status


def class_loss(int kernel, const real[:, :] logits, const int64_t[::1] target, const real[:, :] target_prob,
               const double[::1] weight, const double[::1] sample_weight, int64_t ignore_index,
               double label_smoothing, int reduction, real[::1] loss_rows, real[::1] grad, int n_threads):
    """cross_entropy (class or probability targets) or nll_loss over rows; returns
    (status, loss_total, bad_position, bad_value). Optional arrays may be None."""
    cdef fl_class_args a
    cdef int status
    a.logits = &logits[0, 0]
    a.n_rows = logits.shape[0]
    a.n_cols = logits.shape[1]
    a.row_stride = logits.strides[0] // sizeof(real)
    a.target = &target[0] if target is not None else NULL
    a.target_prob = &target_prob[0, 0] if target_prob is not None else NULL
    a.target_row_stride = target_prob.strides[0] // sizeof(real) if target_prob is not None else 0
    a.weight = &weight[0] if weight is not None else NULL
    a.sample_weight = &sample_weight[0] if sample_weight is not None else NULL
    a.ignore_index = ignore_index
    a.label_smoothing = label_smoothing
    a.reduction = reduction
    a.n_threads = n_threads
    a.loss_rows = &loss_rows[0] if loss_rows is not None else NULL
    a.grad = &grad[0] if grad is not None else NULL
    a.loss_total = 0.0
    a.bad_position = -1
    a.bad_value = 0
    cdef class_kernel fn = CLASS_F32[kernel] if real is float else CLASS_F64[kernel]
    with nogil:
        status = fn(&a)
    return status, a.loss_total, a.bad_position, a.bad_value


# ---- margin and regression (fl_pair_args kernels) ---------------------------------------------------------

ctypedef int (*pair_kernel)(fl_pair_args *a) noexcept nogil
ctypedef int (*multiclass_kernel)(fl_multiclass_args *a) noexcept nogil

# indices into the pair tables (float, double)
cdef enum:
    ZERO_ONE = 0
    LOGISTIC = 1
    EXPONENTIAL = 2
    HINGE = 3
    MSE = 4
    L1 = 5
    HUBER = 6
cdef pair_kernel PAIR_F32[7]
cdef pair_kernel PAIR_F64[7]
PAIR_F32[:] = [fl_zero_one_f32, fl_logistic_f32, fl_exponential_f32, fl_hinge_f32, fl_mse_f32, fl_l1_f32,
               fl_huber_f32]
PAIR_F64[:] = [fl_zero_one_f64, fl_logistic_f64, fl_exponential_f64, fl_hinge_f64, fl_mse_f64, fl_l1_f64,
               fl_huber_f64]
PAIR_OPS = {"zero_one": ZERO_ONE, "logistic": LOGISTIC, "exponential": EXPONENTIAL, "hinge": HINGE,
            "mse": MSE, "l1": L1, "huber": HUBER}

# indices into the multiclass tables (float, double)
cdef enum:
    ZERO_ONE_MULTICLASS = 0
    MULTICLASS_HINGE = 1
cdef multiclass_kernel MULTICLASS_F32[2]
cdef multiclass_kernel MULTICLASS_F64[2]
MULTICLASS_F32[:] = [fl_zero_one_multiclass_f32, fl_multiclass_hinge_f32]
MULTICLASS_F64[:] = [fl_zero_one_multiclass_f64, fl_multiclass_hinge_f64]
MULTICLASS_OPS = {"zero_one": ZERO_ONE_MULTICLASS, "multiclass_hinge": MULTICLASS_HINGE}
HINGE_KINDS = {"crammer_singer": FL_HINGE_CRAMMER_SINGER, "weston_watkins": FL_HINGE_WESTON_WATKINS}
STATUS_LABEL = FL_ERR_LABEL


def pair_loss(int op, const real[::1] x, const real[::1] y, const double[::1] sample_weight, double param,
              int flag, bint check_first, int reduction, real[::1] loss_rows, real[::1] grad, int n_threads):
    """An element-wise loss of (x, y) pairs of the same length; returns (status, loss_total, bad_position,
    bad_fvalue). Optional arrays may be None."""
    cdef fl_pair_args a
    cdef int status
    a.x = &x[0] if x.shape[0] else NULL
    a.y = &y[0] if y.shape[0] else NULL
    a.n = x.shape[0]
    a.sample_weight = &sample_weight[0] if sample_weight is not None and sample_weight.shape[0] else NULL
    a.param = param
    a.flag = flag
    a.check_first = check_first
    a.reduction = reduction
    a.n_threads = n_threads
    a.loss_rows = &loss_rows[0] if loss_rows is not None and loss_rows.shape[0] else NULL
    a.grad = &grad[0] if grad is not None and grad.shape[0] else NULL
    a.loss_total = 0.0
    a.bad_position = -1
    a.bad_fvalue = 0.0
    cdef pair_kernel fn = PAIR_F32[op] if real is float else PAIR_F64[op]
    with nogil:
        status = fn(&a)
    return status, a.loss_total, a.bad_position, a.bad_fvalue


def multiclass_loss(int op, const real[:, :] scores, const int64_t[::1] target, const double[::1] weight,
                    const double[::1] sample_weight, double margin, int kind, int p, int reduction,
                    real[::1] loss_rows, real[::1] grad, int n_threads):
    """A loss over rows of class scores with integer targets; returns (status, loss_total, bad_position,
    bad_value). Optional arrays may be None."""
    cdef fl_multiclass_args a
    cdef int status
    a.scores = &scores[0, 0] if scores.shape[0] else NULL
    a.n_rows = scores.shape[0]
    a.n_cols = scores.shape[1]
    a.row_stride = scores.strides[0] // sizeof(real)
    a.target = &target[0] if target.shape[0] else NULL
    a.weight = &weight[0] if weight is not None else NULL
    a.sample_weight = &sample_weight[0] if sample_weight is not None and sample_weight.shape[0] else NULL
    a.margin = margin
    a.kind = kind
    a.p = p
    a.reduction = reduction
    a.n_threads = n_threads
    a.loss_rows = &loss_rows[0] if loss_rows is not None and loss_rows.shape[0] else NULL
    a.grad = &grad[0] if grad is not None and grad.shape[0] else NULL
    a.loss_total = 0.0
    a.bad_position = -1
    a.bad_value = 0
    cdef multiclass_kernel fn = MULTICLASS_F32[op] if real is float else MULTICLASS_F64[op]
    with nogil:
        status = fn(&a)
    return status, a.loss_total, a.bad_position, a.bad_value


# ---- distributions, binary cross-entropy, kl_div ----------------------------------------------------------


# ---- configuration ----------------------------------------------------------------------------------------

def select_simd(str level):
    """Use the kernels of this SIMD level ('' for the best one the CPU has); False if unavailable."""
    return fl_select_simd(level.encode()) == 0


def simd_level():
    return fl_simd_level().decode()


def simd_available(str level):
    return fl_simd_available(level.encode()) == 1


def openmp_enabled():
    return fl_openmp_enabled() == 1


def max_threads():
    return fl_max_threads()


def compiler():
    return fl_compiler().decode()
