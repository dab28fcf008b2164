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

#define T float
#define FL_T(name) FL_CAT(name, f32)
#define T_EXP fl_exp_f32
#define T_SUM_EXP fl_sum_exp_shifted_f32
#define T_MAX fl_max_f32
#define T_EXP_SCALED fl_exp_shifted_scaled_f32
#define T_EXP_SCALED_NT fl_exp_shifted_scaled_nt_f32
#define T_TILE FL_TILE_F32
#define T_TILE_STATS fl_tile_max_sumexp_f32
#define T_TILE_LOAD fl_tile_load_f32
#include "probabilistic_tpl.h"
#undef T
#undef FL_T
#undef T_EXP
#undef T_SUM_EXP
#undef T_MAX
#undef T_EXP_SCALED
#undef T_EXP_SCALED_NT
#undef T_TILE
#undef T_TILE_STATS
#undef T_TILE_LOAD

#define T double
#define FL_T(name) FL_CAT(name, f64)
#define T_EXP fl_exp_f64
#define T_SUM_EXP fl_sum_exp_shifted_f64
#define T_MAX fl_max_f64
#define T_EXP_SCALED fl_exp_shifted_scaled_f64
#define T_EXP_SCALED_NT fl_exp_shifted_scaled_f64
#define T_TILE FL_TILE_F64
#define T_TILE_STATS fl_tile_max_sumexp_f64
#define T_TILE_LOAD fl_tile_load_f64
#include "probabilistic_tpl.h"
#undef T
#undef FL_T
#undef T_EXP
#undef T_SUM_EXP
#undef T_MAX
#undef T_EXP_SCALED
#undef T_EXP_SCALED_NT
#undef T_TILE
#undef T_TILE_STATS
#undef T_TILE_LOAD
