/* probabilistic.c -- the numerical primitives (logsumexp, softmax, log_softmax) and the class losses
 * (cross_entropy, nll_loss); compiled once per SIMD level, the kernels written once in probabilistic_tpl.h. */
#include "common.h"
#include "vmath.h"

/* Elements per chunk of a row: small enough to stay in L1 between the max and the sum of exps. */
#define FL_CHUNK 2048
/* Rows of at most FL_SMALL_C classes are processed a tile at a time, one row per vector lane. */
#define FL_SMALL_C 32
/* Rows whose stats are taken together (then log(s) is one vector loop): at most FL_GROUP_MAX rows and
 * about FL_GROUP_ELEMENTS elements, so that the group is still in cache when its outputs are written. */
#define FL_GROUP_MAX 256
#define FL_GROUP_ELEMENTS 8192
/* Outputs (softmax, gradients) of at least this many bytes are written with non-temporal stores where the
 * level has them: they would not stay in cache anyway, and plain stores read every line before writing it. */
#define FL_STREAM_BYTES ((fl_index)32 << 20)

#define FL_TEMPLATE "probabilistic_tpl.h"
#include "each_dtype.h"
