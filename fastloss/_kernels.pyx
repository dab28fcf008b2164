# cython: language_level=3
"""The bridge between the Python API and the C kernels.

Design: the Python modules (fastloss/<family>.py) have already validated every input: dtypes are float32 or
float64, matrices have a contiguous last axis, targets are int64, weights float64, output buffers are of the
right size and C-contiguous. This module only fills the kernel's argument struct from the arrays
(reading their pointers, shapes and strides through NumPy's C API), releases the GIL, calls the kernel and hands
back its status. It holds no math, and one exception to "no validation": class_loss_fast recognises the
common call of cross_entropy / nll_loss (plain C-contiguous arrays, no options) with C-level checks and runs
it, because in Python those checks were most of the time of a small call; anything else it hands back
(None) to the Python path, which validates and raises as everywhere.
"""
from libc.stdint cimport int64_t
cimport numpy as cnp

cdef extern from "numpy/arrayobject.h":
    # a NumPy scalar of that dtype from the value at data (NumPy's C API; not in Cython's numpy.pxd)
    object np_scalar "PyArray_Scalar"(void *data, cnp.PyArray_Descr *descr, object base)

cnp.import_array()

ctypedef int (*rows_kernel)(fl_rows_args *a) noexcept nogil
ctypedef int (*class_kernel)(fl_class_args *a) noexcept nogil

# op codes of rows() and class_loss(): indices into these tables of (float32, float64, float16, bfloat16) kernels
cdef enum:
    LOGSUMEXP = 0
    SOFTMAX = 1
    LOG_SOFTMAX = 2
    CROSS_ENTROPY = 0
    CROSS_ENTROPY_PROB = 1
    NLL = 2
cdef rows_kernel ROWS[3][4]
ROWS[LOGSUMEXP][:] = [fl_logsumexp_f32, fl_logsumexp_f64, fl_logsumexp_f16, fl_logsumexp_bf16]
ROWS[SOFTMAX][:] = [fl_softmax_f32, fl_softmax_f64, fl_softmax_f16, fl_softmax_bf16]
ROWS[LOG_SOFTMAX][:] = [fl_log_softmax_f32, fl_log_softmax_f64, fl_log_softmax_f16, fl_log_softmax_bf16]
cdef class_kernel CLASS[3][4]
CLASS[CROSS_ENTROPY][:] = [fl_cross_entropy_f32, fl_cross_entropy_f64, fl_cross_entropy_f16, fl_cross_entropy_bf16]
CLASS[CROSS_ENTROPY_PROB][:] = [fl_cross_entropy_prob_f32, fl_cross_entropy_prob_f64, fl_cross_entropy_prob_f16, fl_cross_entropy_prob_bf16]
CLASS[NLL][:] = [fl_nll_f32, fl_nll_f64, fl_nll_f16, fl_nll_bf16]
OPS = {"logsumexp": LOGSUMEXP, "softmax": SOFTMAX, "log_softmax": LOG_SOFTMAX,
       "cross_entropy": CROSS_ENTROPY, "cross_entropy_prob": CROSS_ENTROPY_PROB, "nll": NLL}

STATUS_OK = FL_OK
STATUS_INDEX = FL_ERR_INDEX
STATUS_NOMEM = FL_ERR_NOMEM
STATUS_LABEL = FL_ERR_LABEL
STATUS_NEGATIVE = FL_ERR_NEGATIVE
REDUCTIONS = {"none": FL_REDUCTION_NONE, "sum": FL_REDUCTION_SUM, "mean": FL_REDUCTION_MEAN}


# Arrays arrive as numpy.ndarray (checked by the typed arguments); their pointers, shapes and strides are read
# with NumPy's C macros: cheaper than acquiring typed memoryviews, which matters for calls on small arrays.

cdef inline void *data(cnp.ndarray a):
    return NULL if a is None else cnp.PyArray_DATA(a)


cdef inline int dtype_slot(cnp.ndarray a):
    """The kernel tables' column of a's dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16 (the Python side
    sends no other dtype: a 2-byte dtype that is not float16 is bfloat16)."""
    cdef int typ = cnp.PyArray_TYPE(a)
    if typ == cnp.NPY_FLOAT32:
        return 0
    if typ == cnp.NPY_FLOAT64:
        return 1
    return 2 if typ == cnp.NPY_FLOAT16 else 3


cdef inline fl_index row_stride(cnp.ndarray m):
    """Elements between rows of a 2-D array whose last axis is contiguous."""
    return cnp.PyArray_STRIDE(m, 0) // cnp.PyArray_ITEMSIZE(m) if m is not None else 0


def rows(int op, cnp.ndarray x not None, cnp.ndarray out not None, int n_threads):
    """Row-wise logsumexp (out: n_rows) or softmax / log_softmax (out: n_rows x n_cols, C order) of the
    2-D x (last axis contiguous; out of x's dtype)."""
    cdef fl_rows_args a
    cdef int status
    a.x = data(x)
    a.n_rows = cnp.PyArray_DIM(x, 0)
    a.n_cols = cnp.PyArray_DIM(x, 1)
    a.row_stride = row_stride(x)
    a.out = data(out)
    a.n_threads = n_threads
    cdef rows_kernel fn = ROWS[op][dtype_slot(x)]
    cdef bint armed = arm_interrupt(a.n_rows * a.n_cols)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status


cdef inline int call_class(int kernel, cnp.ndarray logits, cnp.ndarray target, cnp.ndarray target_prob,
                           cnp.ndarray weight, cnp.ndarray sample_weight, int64_t ignore_index,
                           double label_smoothing, int reduction, cnp.ndarray loss_rows, cnp.ndarray grad,
                           cnp.ndarray hess, int n_threads, fl_class_args *a, bint grad_zeroed=False) except -1:
    """Fills the argument struct of a class-loss kernel and runs it without the GIL; returns its status."""
    cdef int status
    a.logits = data(logits)
    a.n_rows = cnp.PyArray_DIM(logits, 0)
    a.n_cols = cnp.PyArray_DIM(logits, 1)
    a.row_stride = row_stride(logits)
    a.target = <const int64_t *>data(target)
    a.target_prob = data(target_prob)
    a.target_row_stride = row_stride(target_prob)
    a.weight = <const double *>data(weight)
    a.sample_weight = <const double *>data(sample_weight)
    a.ignore_index = ignore_index
    a.label_smoothing = label_smoothing
    a.reduction = reduction
    a.n_threads = n_threads
    a.loss_rows = data(loss_rows)
    a.grad = data(grad)
    a.hess = data(hess)
    # a 2-byte gradient (half logits, a grad_out of their dtype: checked by the caller) is stored as half
    a.grad_half = grad is not None and cnp.PyArray_ITEMSIZE(grad) == 2
    a.grad_zeroed = grad is not None and grad_zeroed
    a.loss_total = 0.0
    a.bad_position = -1
    a.bad_value = 0
    cdef class_kernel fn = CLASS[kernel][dtype_slot(logits)]
    cdef bint armed = arm_interrupt(a.n_rows * a.n_cols)
    with nogil:
        status = fn(a)
    disarm_interrupt(armed)
    return status


def class_loss(int kernel, cnp.ndarray logits not None, cnp.ndarray target, cnp.ndarray target_prob,
               cnp.ndarray weight, cnp.ndarray sample_weight, int64_t ignore_index, double label_smoothing,
               int reduction, cnp.ndarray loss_rows, cnp.ndarray grad, int n_threads, cnp.ndarray hess=None,
               bint grad_zeroed=False):
    """cross_entropy (class or probability targets) or nll_loss over the rows of the 2-D logits; returns
    (status, loss_total, bad_position, bad_value). Optional arrays may be None; hess (the Hessian's diagonal,
    cross_entropy only) only with grad. grad_zeroed: grad is all zeros already (np.zeros), and its zero rows and
    entries are not written again."""
    cdef fl_class_args a
    cdef int status = call_class(kernel, logits, target, target_prob, weight, sample_weight, ignore_index,
                                 label_smoothing, reduction, loss_rows, grad, hess, n_threads, &a, grad_zeroed)
    return status, a.loss_total, a.bad_position, a.bad_value


# The common call of the class losses, checked here in C (in Python the checks were most of a 4 x 10 call's
# ~1.4 us): logits a C-contiguous, aligned, native 2-D float32/float64 ndarray, target the same kind of 1-D
# int64 array with one entry per row, no weights, no smoothing, default threads, a reduction named exactly.
# Outputs this large or larger take the general path (the output cache of _checks, when it is on). Threads: 0,
# the default of every call without n_threads, worked out in C (process.h): always the same as the general path.
cdef Py_ssize_t FAST_OUTPUT_MAX = 16 << 20


cdef extern from "numpy/arrayobject.h":
    bint PyArray_CheckExact(object o)
    bint PyArray_ISNOTSWAPPED(cnp.ndarray a)
    bint PyArray_ISALIGNED(cnp.ndarray a)
    bint PyArray_IS_C_CONTIGUOUS(cnp.ndarray a)

cdef extern from "Python.h":
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyUnicode_CheckExact(object o)
    double PyFloat_AS_DOUBLE(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1


cdef inline bint plain_array(object o, int ndim):
    """o is exactly an ndarray of ndim dimensions, C-contiguous, aligned, in native byte order."""
    if not PyArray_CheckExact(o):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>o
    return (cnp.PyArray_NDIM(a) == ndim and PyArray_IS_C_CONTIGUOUS(a) and PyArray_ISALIGNED(a)
            and PyArray_ISNOTSWAPPED(a))


def class_loss_fast(int kernel, object logits, object target, object weight, object sample_weight,
                    object ignore_index, object label_smoothing, object reduction, object n_threads,
                    bint want_grad):
    """cross_entropy / nll_loss (kernel: CROSS_ENTROPY or NLL) for the common call (above): the loss (a NumPy
    scalar of logits' dtype, or the (n_rows,) losses for reduction "none"), or (loss, grad) with want_grad.
    None when the call is not the common one or the kernel reports an error: the general path then checks
    everything and raises. Nothing is written anywhere but into the new outputs."""
    if weight is not None or sample_weight is not None or n_threads is not None:
        return None
    if not (plain_array(logits, 2) and plain_array(target, 1)):
        return None
    cdef cnp.ndarray x = <cnp.ndarray>logits, t = <cnp.ndarray>target
    cdef int typ = cnp.PyArray_TYPE(x)
    if (typ != cnp.NPY_FLOAT32 and typ != cnp.NPY_FLOAT64) or cnp.PyArray_TYPE(t) != cnp.NPY_INT64:
        return None
    if not ((PyFloat_CheckExact(label_smoothing) and PyFloat_AS_DOUBLE(label_smoothing) == 0.0)
            or (PyLong_CheckExact(label_smoothing) and label_smoothing == 0)):
        return None
    if not (PyLong_CheckExact(ignore_index) and PyUnicode_CheckExact(reduction)):
        return None
    cdef int overflow = 0
    cdef long long ignore = PyLong_AsLongLongAndOverflow(ignore_index, &overflow)
    red = REDUCTIONS.get(reduction)
    cdef cnp.npy_intp n_rows = cnp.PyArray_DIM(x, 0), n_cols = cnp.PyArray_DIM(x, 1)
    if overflow or red is None or n_cols == 0 or cnp.PyArray_DIM(t, 0) != n_rows:
        return None
    cdef cnp.npy_intp dims[2]
    dims[0] = n_rows
    dims[1] = n_cols
    cdef cnp.ndarray rows = None, grad = None
    if want_grad:
        if n_cols > FAST_OUTPUT_MAX // (n_rows * cnp.PyArray_ITEMSIZE(x) if n_rows else 1):
            return None
        grad = cnp.PyArray_EMPTY(2, dims, typ, 0)
    if red == FL_REDUCTION_NONE:
        rows = cnp.PyArray_EMPTY(1, dims, typ, 0)
    cdef fl_class_args a
    if call_class(kernel, x, t, None, None, None, ignore, 0.0, red, rows, grad, None, 0, &a):
        return None
    cdef float f
    if rows is not None:
        loss = rows
    elif typ == cnp.NPY_FLOAT32:
        f = <float>a.loss_total  # rounded to nearest; beyond float's range: inf
        loss = np_scalar(&f, cnp.PyArray_DESCR(x), None)
    else:
        loss = np_scalar(&a.loss_total, cnp.PyArray_DESCR(x), None)
    return (loss, grad) if want_grad else loss


# ---- margin and regression (fl_pair_args kernels) ---------------------------------------------------------

ctypedef int (*pair_kernel)(fl_pair_args *a) noexcept nogil
ctypedef int (*multiclass_kernel)(fl_multiclass_args *a) noexcept nogil

# indices into the pair tables (columns by dtype_slot)
cdef enum:
    ZERO_ONE = 0
    LOGISTIC = 1
    EXPONENTIAL = 2
    HINGE = 3
    MSE = 4
    L1 = 5
    HUBER = 6
    SMOOTH_L1 = 7
    LOG_COSH = 8
    PINBALL = 9
    POISSON_NLL = 10
    GAUSSIAN_NLL = 11
    TWEEDIE = 12
    SIGMOID_FOCAL = 13
cdef pair_kernel PAIR[14][4]
PAIR[ZERO_ONE][:] = [fl_zero_one_f32, fl_zero_one_f64, fl_zero_one_f16, fl_zero_one_bf16]
PAIR[LOGISTIC][:] = [fl_logistic_f32, fl_logistic_f64, fl_logistic_f16, fl_logistic_bf16]
PAIR[EXPONENTIAL][:] = [fl_exponential_f32, fl_exponential_f64, fl_exponential_f16, fl_exponential_bf16]
PAIR[HINGE][:] = [fl_hinge_f32, fl_hinge_f64, fl_hinge_f16, fl_hinge_bf16]
PAIR[MSE][:] = [fl_mse_f32, fl_mse_f64, fl_mse_f16, fl_mse_bf16]
PAIR[L1][:] = [fl_l1_f32, fl_l1_f64, fl_l1_f16, fl_l1_bf16]
PAIR[HUBER][:] = [fl_huber_f32, fl_huber_f64, fl_huber_f16, fl_huber_bf16]
PAIR[SMOOTH_L1][:] = [fl_smooth_l1_f32, fl_smooth_l1_f64, fl_smooth_l1_f16, fl_smooth_l1_bf16]
PAIR[LOG_COSH][:] = [fl_log_cosh_f32, fl_log_cosh_f64, fl_log_cosh_f16, fl_log_cosh_bf16]
PAIR[PINBALL][:] = [fl_pinball_f32, fl_pinball_f64, fl_pinball_f16, fl_pinball_bf16]
PAIR[POISSON_NLL][:] = [fl_poisson_nll_f32, fl_poisson_nll_f64, fl_poisson_nll_f16, fl_poisson_nll_bf16]
PAIR[GAUSSIAN_NLL][:] = [fl_gaussian_nll_f32, fl_gaussian_nll_f64, fl_gaussian_nll_f16, fl_gaussian_nll_bf16]
PAIR[TWEEDIE][:] = [fl_tweedie_f32, fl_tweedie_f64, fl_tweedie_f16, fl_tweedie_bf16]
PAIR[SIGMOID_FOCAL][:] = [fl_sigmoid_focal_f32, fl_sigmoid_focal_f64, fl_sigmoid_focal_f16, fl_sigmoid_focal_bf16]
PAIR_OPS = {"zero_one": ZERO_ONE, "logistic": LOGISTIC, "exponential": EXPONENTIAL, "hinge": HINGE,
            "mse": MSE, "l1": L1, "huber": HUBER, "smooth_l1": SMOOTH_L1, "log_cosh": LOG_COSH, "pinball": PINBALL,
            "poisson_nll": POISSON_NLL, "gaussian_nll": GAUSSIAN_NLL, "tweedie": TWEEDIE,
            "sigmoid_focal": SIGMOID_FOCAL}
# fl_pair_args.flag values (fastloss.h)
POISSON_LOG_INPUT = FL_POISSON_LOG_INPUT
POISSON_FULL = FL_POISSON_FULL
TWEEDIE_FLAGS = {1.0: FL_TWEEDIE_POISSON, 2.0: FL_TWEEDIE_GAMMA}  # by power; FL_TWEEDIE_GENERAL otherwise
FOCAL_FLAGS = {0.0: FL_FOCAL_GAMMA_0, 1.0: FL_FOCAL_GAMMA_1, 2.0: FL_FOCAL_GAMMA_2}  # by gamma; else GENERAL

# indices into the multiclass tables (columns by dtype_slot)
cdef enum:
    ZERO_ONE_MULTICLASS = 0
    MULTICLASS_HINGE = 1
cdef multiclass_kernel MULTICLASS[2][4]
MULTICLASS[ZERO_ONE_MULTICLASS][:] = [fl_zero_one_multiclass_f32, fl_zero_one_multiclass_f64, fl_zero_one_multiclass_f16, fl_zero_one_multiclass_bf16]
MULTICLASS[MULTICLASS_HINGE][:] = [fl_multiclass_hinge_f32, fl_multiclass_hinge_f64, fl_multiclass_hinge_f16, fl_multiclass_hinge_bf16]
MULTICLASS_OPS = {"zero_one": ZERO_ONE_MULTICLASS, "multiclass_hinge": MULTICLASS_HINGE}
HINGE_KINDS = {"crammer_singer": FL_HINGE_CRAMMER_SINGER, "weston_watkins": FL_HINGE_WESTON_WATKINS}
STATUS_LABEL = FL_ERR_LABEL


def pair_loss(int op, cnp.ndarray x not None, cnp.ndarray y not None, cnp.ndarray sample_weight, double param,
              int flag, bint check_first, int reduction, cnp.ndarray loss_rows, cnp.ndarray grad, int n_threads,
              cnp.ndarray hess=None, cnp.ndarray v=None, double param2=0.0):
    """An element-wise loss of (x, y) pairs of the same length (and v, a third input of that length, for
    gaussian_nll); returns (status, loss_total, bad_position, bad_fvalue). Optional arrays may be None; hess is
    written only with grad."""
    cdef fl_pair_args a
    cdef int status
    a.x = data(x)
    a.y = data(y)
    a.n = cnp.PyArray_SIZE(x)
    a.sample_weight = <const double *>data(sample_weight)
    a.param = param
    a.flag = flag
    a.check_first = check_first
    a.reduction = reduction
    a.n_threads = n_threads
    a.loss_rows = data(loss_rows)
    a.grad = data(grad)
    a.hess = data(hess)
    a.v = data(v)
    a.param2 = param2
    a.loss_total = 0.0
    a.bad_position = -1
    a.bad_fvalue = 0.0
    cdef pair_kernel fn = PAIR[op][dtype_slot(x)]
    cdef bint armed = arm_interrupt(a.n)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status, a.loss_total, a.bad_position, a.bad_fvalue


def multiclass_loss(int op, cnp.ndarray scores not None, cnp.ndarray target not None, cnp.ndarray weight,
                    cnp.ndarray sample_weight, double margin, int kind, int p, int reduction,
                    cnp.ndarray loss_rows, cnp.ndarray grad, int n_threads, bint grad_zeroed=False):
    """A loss over rows of class scores with integer targets; returns (status, loss_total, bad_position,
    bad_value). Optional arrays may be None. grad_zeroed: grad is all zeros already (np.zeros; crammer_singer
    then writes only each row's nonzero entries)."""
    cdef fl_multiclass_args a
    cdef int status
    a.scores = data(scores)
    a.n_rows = cnp.PyArray_DIM(scores, 0)
    a.n_cols = cnp.PyArray_DIM(scores, 1)
    a.row_stride = row_stride(scores)
    a.target = <const int64_t *>data(target)
    a.weight = <const double *>data(weight)
    a.sample_weight = <const double *>data(sample_weight)
    a.margin = margin
    a.kind = kind
    a.p = p
    a.reduction = reduction
    a.n_threads = n_threads
    a.loss_rows = data(loss_rows)
    a.grad = data(grad)
    a.grad_zeroed = grad is not None and grad_zeroed
    a.loss_total = 0.0
    a.bad_position = -1
    a.bad_value = 0
    cdef multiclass_kernel fn = MULTICLASS[op][dtype_slot(scores)]
    cdef bint armed = arm_interrupt(a.n_rows * a.n_cols)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status, a.loss_total, a.bad_position, a.bad_value


# ---- distributions, binary cross-entropy, kl_div ----------------------------------------------------------

ctypedef int (*dist_kernel)(fl_dist_args *a) noexcept nogil
ctypedef int (*elem_kernel)(fl_elem_args *a) noexcept nogil

# op codes for distribution() and elementwise(): index into these tables (columns by dtype_slot)
cdef enum:
    ENTROPY = 0
    CATEGORICAL_CROSS_ENTROPY = 1
    KL_DIVERGENCE = 2
    BCE_WITH_LOGITS = 0
    KL_DIV = 1
cdef dist_kernel DIST[3][4]
DIST[ENTROPY][:] = [fl_entropy_f32, fl_entropy_f64, fl_entropy_f16, fl_entropy_bf16]
DIST[CATEGORICAL_CROSS_ENTROPY][:] = [fl_categorical_cross_entropy_f32, fl_categorical_cross_entropy_f64, fl_categorical_cross_entropy_f16, fl_categorical_cross_entropy_bf16]
DIST[KL_DIVERGENCE][:] = [fl_kl_divergence_f32, fl_kl_divergence_f64, fl_kl_divergence_f16, fl_kl_divergence_bf16]
cdef elem_kernel ELEM[2][4]
ELEM[BCE_WITH_LOGITS][:] = [fl_bce_with_logits_f32, fl_bce_with_logits_f64, fl_bce_with_logits_f16, fl_bce_with_logits_bf16]
ELEM[KL_DIV][:] = [fl_kl_div_f32, fl_kl_div_f64, fl_kl_div_f16, fl_kl_div_bf16]
DIST_OPS = {"entropy": ENTROPY, "categorical_cross_entropy": CATEGORICAL_CROSS_ENTROPY,
            "kl_divergence": KL_DIVERGENCE}
ELEM_OPS = {"bce_with_logits": BCE_WITH_LOGITS, "kl_div": KL_DIV}
STATUS_NEGATIVE = FL_ERR_NEGATIVE


def distribution(int op, cnp.ndarray p not None, cnp.ndarray q, double log_base, cnp.ndarray out not None,
                 int n_threads):
    """entropy (q None), categorical_cross_entropy or kl_divergence of each row into out (n_rows);
    returns (status, bad_position, bad_operand, bad_fvalue)."""
    cdef fl_dist_args a
    cdef int status
    a.p = data(p)
    a.n_rows = cnp.PyArray_DIM(p, 0)
    a.n_cols = cnp.PyArray_DIM(p, 1)
    a.p_row_stride = row_stride(p)
    a.q = data(q)
    a.q_row_stride = row_stride(q)
    a.log_base = log_base
    a.n_threads = n_threads
    a.out = data(out)
    a.bad_position = -1
    a.bad_operand = 0
    a.bad_fvalue = 0.0
    cdef dist_kernel fn = DIST[op][dtype_slot(p)]
    cdef bint armed = arm_interrupt(a.n_rows * a.n_cols)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status, a.bad_position, a.bad_operand, a.bad_fvalue


def elementwise(int op, cnp.ndarray x not None, cnp.ndarray y not None, cnp.ndarray weight,
                cnp.ndarray pos_weight, bint log_target, int reduction, double divisor,
                cnp.ndarray loss_rows, cnp.ndarray grad, int n_threads, cnp.ndarray hess=None):
    """binary_cross_entropy_with_logits or kl_div over contiguous vectors; weights repeat with their length.
    Returns (status, loss_total). Optional arrays may be None; hess is written only with grad."""
    cdef fl_elem_args a
    cdef int status
    a.x = data(x)
    a.y = data(y)
    a.n = cnp.PyArray_SIZE(x)
    a.weight = <const double *>data(weight)
    a.weight_period = cnp.PyArray_SIZE(weight) if weight is not None else 1
    a.pos_weight = <const double *>data(pos_weight)
    a.pos_weight_period = cnp.PyArray_SIZE(pos_weight) if pos_weight is not None else 1
    a.log_target = log_target
    a.reduction = reduction
    a.divisor = divisor
    a.n_threads = n_threads
    a.loss_rows = data(loss_rows)
    a.grad = data(grad)
    a.hess = data(hess)
    a.loss_total = 0.0
    cdef elem_kernel fn = ELEM[op][dtype_slot(x)]
    cdef bint armed = arm_interrupt(a.n)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status, a.loss_total



# ---- vector math (for its tests) ---------------------------------------------------------------------------

VMATH_OPS = {"exp": 0, "log": 1, "log1p": 2, "expm1": 3}


def vmath(int op, cnp.ndarray x not None, cnp.ndarray out not None):
    """out = f(x) for contiguous float32 / float64 vectors x and out (same dtype and size), f of vmath.h at
    the selected SIMD level."""
    cdef fl_vmath_args a
    cdef int (*fn)(fl_vmath_args *a) noexcept nogil
    fn = fl_vmath_f32 if dtype_slot(x) == 0 else fl_vmath_f64
    a.x = data(x)
    a.n = cnp.PyArray_SIZE(x)
    a.op = op
    a.out = data(out)
    with nogil:
        fn(&a)

# ---- evaluation ----------------------------------------------------------------------------------------------
# The kernels of evaluate.c write per-block partial sums into block_sums (a C-contiguous float64 array of
# ceil(rows / rows_per_block) rows, allocated by the caller from block_layout()); fastloss/evaluate.py adds them.

ctypedef int (*eval_kernel)(fl_eval_args *a) noexcept nogil
ctypedef int (*eval_binary_kernel)(fl_eval_binary_args *a) noexcept nogil
cdef eval_kernel EVALUATE[4]
EVALUATE[:] = [fl_evaluate_f32, fl_evaluate_f64, fl_evaluate_f16, fl_evaluate_bf16]
cdef eval_binary_kernel EVALUATE_BINARY[4]
EVALUATE_BINARY[:] = [fl_evaluate_binary_f32, fl_evaluate_binary_f64, fl_evaluate_binary_f16, fl_evaluate_binary_bf16]


def block_layout(fl_index n_cols):
    """(rows per block of the row kernels for rows of n_cols elements, elements per block of the element-wise
    kernels): the partition that per-block partial sums refer to."""
    cdef fl_layout_args a
    a.n_cols = n_cols
    fl_block_layout(&a)
    return a.rows_per_block, a.block_elements


def evaluate(cnp.ndarray logits not None, cnp.ndarray target not None, cnp.ndarray weight, int64_t ignore_index,
             cnp.ndarray topk not None, cnp.ndarray block_sums not None, int n_threads):
    """Per-block [loss, weight, rows, hits per k] of the 2-D logits into block_sums; returns
    (status, bad_position, bad_value)."""
    cdef fl_eval_args a
    cdef int status
    a.logits = data(logits)
    a.n_rows = cnp.PyArray_DIM(logits, 0)
    a.n_cols = cnp.PyArray_DIM(logits, 1)
    a.row_stride = row_stride(logits)
    a.target = <const int64_t *>data(target)
    a.weight = <const double *>data(weight)
    a.ignore_index = ignore_index
    a.topk = <const int64_t *>data(topk)
    a.n_topk = cnp.PyArray_SIZE(topk)
    a.n_threads = n_threads
    a.block_sums = <double *>data(block_sums)
    a.bad_position = -1
    a.bad_value = 0
    cdef eval_kernel fn = EVALUATE[dtype_slot(logits)]
    cdef bint armed = arm_interrupt(a.n_rows * a.n_cols)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status, a.bad_position, a.bad_value


def evaluate_binary(cnp.ndarray scores not None, cnp.ndarray y not None, cnp.ndarray sample_weight,
                    cnp.ndarray block_sums not None, int n_threads):
    """Per-block [weight, logistic, hinge, exponential, correct] sums of contiguous vectors into block_sums;
    returns (status, bad_position, bad_fvalue)."""
    cdef fl_eval_binary_args a
    cdef int status
    a.scores = data(scores)
    a.y = data(y)
    a.n = cnp.PyArray_SIZE(scores)
    a.sample_weight = <const double *>data(sample_weight)
    a.n_threads = n_threads
    a.block_sums = <double *>data(block_sums)
    a.bad_position = -1
    a.bad_fvalue = 0.0
    cdef eval_binary_kernel fn = EVALUATE_BINARY[dtype_slot(scores)]
    cdef bint armed = arm_interrupt(a.n)
    with nogil:
        status = fn(&a)
    disarm_interrupt(armed)
    return status, a.bad_position, a.bad_fvalue


def class_block_sums(int kernel, cnp.ndarray logits not None, cnp.ndarray target not None, cnp.ndarray weight,
                     cnp.ndarray sample_weight, int64_t ignore_index, double label_smoothing,
                     cnp.ndarray block_sums not None, double weight_sum, int n_threads):
    """Per-block loss sums of a class kernel (op code of class_loss) into block_sums, and weight_sum continued;
    returns (status, weight_sum, bad_position, bad_value)."""
    cdef fl_class_blocks_args a
    cdef int status
    a.rows.logits = data(logits)
    a.rows.n_rows = cnp.PyArray_DIM(logits, 0)
    a.rows.n_cols = cnp.PyArray_DIM(logits, 1)
    a.rows.row_stride = row_stride(logits)
    a.rows.target = <const int64_t *>data(target)
    a.rows.target_prob = NULL
    a.rows.target_row_stride = 0
    a.rows.weight = <const double *>data(weight)
    a.rows.sample_weight = <const double *>data(sample_weight)
    a.rows.ignore_index = ignore_index
    a.rows.label_smoothing = label_smoothing
    a.rows.reduction = FL_REDUCTION_SUM
    a.rows.n_threads = n_threads
    a.rows.loss_rows = NULL
    a.rows.grad = NULL
    a.rows.hess = NULL
    a.rows.grad_half = 0
    a.rows.grad_zeroed = 0
    a.rows.loss_total = 0.0
    a.rows.bad_position = -1
    a.rows.bad_value = 0
    a.elem_size = cnp.PyArray_ITEMSIZE(logits)
    a.kernel = CLASS[kernel][dtype_slot(logits)]
    a.block_sums = <double *>data(block_sums)
    a.weight_sum = weight_sum
    cdef bint armed = arm_interrupt(a.rows.n_rows * a.rows.n_cols)
    with nogil:
        status = fl_class_block_sums(&a)
    disarm_interrupt(armed)
    return status, a.weight_sum, a.rows.bad_position, a.rows.bad_value


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


# ---- process behaviour: threads, fork, Ctrl-C (src_c/process.h) ---------------------------------------------

fl_process_init()  # the pthread_atfork handlers: a child forked from a threaded process runs serial


def set_thread_settings(int override_threads, int env_threads, int cpus, bint omp_env_set):
    """What fl_default_threads works from (0: not set): fl.set_num_threads, FASTLOSS_NUM_THREADS, the usable
    CPUs, whether OMP_NUM_THREADS was set."""
    fl_set_thread_settings(override_threads, env_threads, cpus, omp_env_set)


def forked_serial():
    """True in a child forked from a process that had threads (and its descendants): the kernels run serial."""
    return fl_fork_serial != 0


def small_pages(cnp.ndarray a):
    """Turns the whole 2 MiB extents of a new array's memory to 4 KiB pages (src_c/process.h, fl_small_pages),
    before anything is written there. No byte of a is changed. True where it advised (Linux; a spans one)."""
    return fl_small_pages(cnp.PyArray_DATA(a), <long>cnp.PyArray_NBYTES(a)) == 1


def watch_output(cnp.ndarray a, long slow_ns=-1):
    """Registers a new large output for this thread's next kernel call: its huge pages are faulted block by block
    just before the kernel writes them, timed, and once three are slow the rest are small pages (src_c/process.h,
    fl_fresh_watch_output; slow_ns < 0: its threshold). No byte of a is changed. True where a is watched (memory
    not yet handed over, at least 8 whole huge pages, at most 4 outputs a call). The call's end drops the watch."""
    return fl_fresh_watch_output(cnp.PyArray_DATA(a), <long>cnp.PyArray_NBYTES(a), slow_ns) == 1


def default_threads():
    """The threads of n_threads=None for a call from this thread now (OpenMP's limit is per thread)."""
    return fl_default_threads()


# Ctrl-C during a long call. The kernels run without the GIL, so Python's SIGINT handler cannot run until the call
# returns; around a call of at least INTERRUPTIBLE_ELEMENTS elements made by the main thread while Python's
# handler is the default one (the one that raises KeyboardInterrupt), a C handler is installed that sets the
# stop flag the kernels read between blocks, and chains to Python's. A program with a handler of its own expects
# its calls to finish, so its calls are never armed; smaller calls end within milliseconds anyway and are spared
# the cost (two sigaction calls and a look at the handler, about a microsecond).
import signal as _signal
import threading as _threading
from cpython.pythread cimport PyThread_get_thread_ident

cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1

cdef fl_index INTERRUPTIBLE_ELEMENTS = 1 << 20


def interruptible_elements():
    """The size from which a call from the main thread responds to Ctrl-C (for the tests)."""
    return INTERRUPTIBLE_ELEMENTS


cdef inline bint arm_interrupt(fl_index n_elements) except -1:
    """Arms the SIGINT handler for a call of n_elements elements if it qualifies (above); True if armed."""
    if n_elements < INTERRUPTIBLE_ELEMENTS:
        return False
    if PyThread_get_thread_ident() != _threading.main_thread().ident:
        return False
    if _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler:
        return False
    return fl_interrupt_arm() == 1


cdef inline int disarm_interrupt(bint armed) except -1:
    """After a kernel call: drops the watch of its new outputs (watch_output), restores Python's handler; if SIGINT
    arrived during the call, raises KeyboardInterrupt (Python's handler, called by ours, has noted the signal:
    PyErr_CheckSignals runs it now). The outputs may be partly written."""
    fl_fresh_clear()
    if armed and fl_interrupt_disarm():
        PyErr_CheckSignals()
        raise KeyboardInterrupt
    return 0


# ---- the benchmark's floors ---------------------------------------------------------------------------------

def stream_f32(bint write, cnp.ndarray buf not None, int n_threads):
    """A streaming read (write=False: returns the sum of buf) or write (write=True: fills buf with 0.5) of a
    C-contiguous float32 array, for the memory bandwidth of fastloss.bench.timing; returns (status, sum)."""
    cdef fl_stream_args a
    cdef int status
    a.x = <const float *>data(buf)
    a.out = <float *>data(buf)
    a.n = cnp.PyArray_SIZE(buf)
    a.value = 0.5
    a.n_threads = n_threads
    a.sum = 0.0
    with nogil:
        status = fl_stream_write_f32(&a) if write else fl_stream_read_f32(&a)
    return status, a.sum
