/* probabilistic.c -- the numerical primitives (logsumexp, softmax, log_softmax) and the class losses
 * (cross_entropy, nll_loss); compiled once per SIMD level, the kernels written once in probabilistic_tpl.h. */
#include "common.h"
#include "vmath.h"

/* Outputs (softmax, gradients) of at least this many bytes are written with non-temporal stores where the
 * level has them: they would not stay in cache anyway, and plain stores read every line before writing it. */
#define FL_STREAM_BYTES ((fl_index)32 << 20)

#define FL_TEMPLATE "probabilistic_tpl.h"
#include "each_dtype.h"
