/* common.h -- what every family file shares: the level suffix, the dtype template switch, the block driver.
 * Included by the family files only (never by the Cython bridge). */
#ifndef FASTLOSS_COMMON_H
#define FASTLOSS_COMMON_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fastloss.h"
#include "process.h"
#include "vmath.h"

#ifndef FL_LEVEL
#error "compile the family files with -DFL_LEVEL=scalar|avx2|avx512 (setup.py does)"
#endif

#define FL_CAT2(a, b) a##_##b
#define FL_CAT(a, b) FL_CAT2(a, b)
/* FL_IMPL(fl_softmax_f32) -> fl_softmax_f32_avx2: the implementation of a kernel at this file's level. */
#define FL_IMPL(name) FL_CAT(name, FL_LEVEL)

#if defined(__GNUC__) || defined(__clang__)
#define FL_INLINE static inline __attribute__((always_inline))
#define FL_RESTRICT __restrict__
#else
#define FL_INLINE static inline
#define FL_RESTRICT
#endif
/* A function that runs a block of work inside FL_FOR_BLOCKS: kept out of line, so that the serial and the
 * OpenMP path run the same compiled (and vectorised) code. gcc does not vectorise the copy it inlines into an
 * OpenMP region as it does the serial one (seen: kl_divergence 3x slower on 2 threads than on 1). */
#if defined(__GNUC__) || defined(__clang__)
#define FL_BLOCK_FN static __attribute__((noinline))
#else
#define FL_BLOCK_FN static
#endif

/* Work below this many elements runs on the calling thread: starting a team costs more than it saves. That cost
 * depends on the workers: within FL_TEAM_WARM_NS of the last team (fl_team_warm, process.h) they still spin and
 * a team starts within microseconds; after an idle gap they sleep, and waking one took ~130 us on this 2-vCPU VM
 * (logistic_loss on 65,536 float32 after 30 ms idle: 1 thread 69 us, 2 threads 200 us; back to back 48 / 29
 * us), so a cold team of the default threads needs FL_COLD_TEAM_FACTOR times the work a thread (262,144
 * elements: 294 / 261 us); an explicit n_threads gets its team whenever the work is worth it warm. */
#define FL_MIN_ELEMENTS_PER_THREAD 32768
#define FL_COLD_TEAM_FACTOR 4

/* Rows are processed in fixed blocks of about FL_BLOCK_ELEMENTS elements; each block's partial sums are
 * kept apart and added in block order at the end. The partition depends on the shape only, never on the
 * number of threads, so every n_threads gives the same bits. */
#define FL_BLOCK_ELEMENTS 16384

static inline fl_index fl_rows_per_block(fl_index n_cols)
{
    fl_index r = FL_BLOCK_ELEMENTS / (n_cols > 0 ? n_cols : 1);
    return r > 0 ? r : 1;
}

static inline fl_index fl_n_blocks(fl_index n_rows, fl_index rows_per_block)
{
    return (n_rows + rows_per_block - 1) / rows_per_block;
}

/* The number of threads worth starting for this much work; n_threads <= 0 means the default (process.h), only
 * worked out when the work is worth more than one thread. */
static inline int fl_threads_for(int n_threads, fl_index n_elements, fl_index n_blocks)
{
    fl_index by_work = n_elements / FL_MIN_ELEMENTS_PER_THREAD;
    if (by_work > n_blocks) by_work = n_blocks;
    if (by_work <= 1) return 1;
    if (n_threads <= 0 && !fl_team_warm()) { /* the default only (a clock read, for work worth a team) */
        by_work = n_elements / (FL_MIN_ELEMENTS_PER_THREAD * FL_COLD_TEAM_FACTOR);
        if (by_work > n_blocks) by_work = n_blocks;
        if (by_work <= 1) return 1;
    }
    fl_index t = n_threads > 0 ? n_threads : fl_default_threads();
    if (t > by_work) t = by_work;
    return t > 1 ? (int)t : 1;
}

/* Runs the statement (the variadic part, commas allowed) for b in [0, n_blocks), on nt threads when nt > 1.
 * Guided schedule: a free thread takes a run of consecutive blocks (the remaining ones over the threads), the runs
 * shrinking to single blocks at the end, so that a thread slowed by another process on its core leaves the later
 * runs to the others (with a static half each, the call took as long as the slow half; a busy loop pinned to the
 * second CPU, cross_entropy 4,096 x 32,000 float32 on 2 threads: guided 33.7 ms, single blocks 32.6, runs of an
 * eighth of a thread's share 32.6). Runs, not the single blocks of a dynamic schedule: in a new output, a thread's
 * first store to a 2 MiB huge page faults and the kernel zeroes the whole page before it takes the page-table
 * lock, so two threads writing interleaved blocks of one page both zeroed it (one copy thrown away).
 * cross_entropy_and_grad 4,096 x 32,000 float32 into a new gradient, 2 threads: 97 ms with single blocks, 78 ms
 * with guided runs (83 with fixed runs of an eighth of a thread's share), a held one 39 ms either way. Kernels that
 * only read gained too, each thread streaming through its own run of memory (30 ms idle before each call:
 * cross_entropy 4,096 x 32,000 bfloat16 16.4 -> 14.1 ms, float32 24.8 -> 23.6; kl_divergence 100,000 x 1,000
 * 30.1 -> 25.3). The results do not depend on the schedule: each block writes its own partial sums, added in
 * block order afterwards.
 * Process behaviour (process.h): each worker moves off the calling thread's CPU after its blocks (fl_team_settle);
 * serial in a child forked from a threaded process (OpenMP's pool is gone there);
 * once the calling thread's stop flag is set (Ctrl-C), the blocks not yet started are skipped -- the flag is read
 * once per block, never inside one, and the bridge raises KeyboardInterrupt, so the partial sums of skipped blocks
 * are never used for a result (fl_partials_init makes them harmless for the code after the loop). */
/* A single block has no "between blocks": it skips the stop flag's thread-local lookup (small calls). */
static inline const volatile sig_atomic_t *fl_stop_flag_for(fl_index n_blocks)
{
    static const volatile sig_atomic_t never = 0;
    return n_blocks > 1 ? fl_stop_flag() : &never;
}
/* The loop over blocks that writes the call's outputs takes the watch of their new pages (process.h,
 * fl_fresh_take: the first loop of the call, or none): FL_FOR_BLOCKS. A loop that only reads, ahead of the one
 * that writes (the checks of the element-wise kernels, nll_loss's losses before its gradient), leaves it to that
 * one: FL_FOR_BLOCKS_READING. */
#define FL_FOR_BLOCKS(b, n_blocks, nt, ...) FL_FOR_BLOCKS_WATCHED(b, n_blocks, nt, fl_fresh_take(), __VA_ARGS__)
#define FL_FOR_BLOCKS_READING(b, n_blocks, nt, ...) FL_FOR_BLOCKS_WATCHED(b, n_blocks, nt, NULL, __VA_ARGS__)
#define FL__FRESH_BLOCK(w, done, b, n_blocks)                                                              \
    do {                                                                                                    \
        if (w) fl_fresh_block((w), (done), (long long)(b), (long long)(n_blocks));                        \
    } while (0)
#ifdef _OPENMP
#define FL_FOR_BLOCKS_WATCHED(b, n_blocks, nt, watch, ...)                                                 \
    do {                                                                                                    \
        const volatile sig_atomic_t *const fl__stop = fl_stop_flag_for(n_blocks);                           \
        fl_fresh_watch *const fl__watch = (watch);                                                          \
        if ((nt) > 1 && !fl_fork_serial) {                                                                  \
            const void *const fl__team = fl_team_begin();                                                   \
            _Pragma("omp parallel num_threads(nt)")                                                         \
            {                                                                                               \
                size_t fl__done[FL_FRESH_MAX_OUTPUTS] = {0};                                                \
                _Pragma("omp for schedule(guided) nowait")                                                  \
                for (fl_index b = 0; b < (n_blocks); b++) {                                                \
                    if (!*fl__stop) { FL__FRESH_BLOCK(fl__watch, fl__done, b, n_blocks); __VA_ARGS__; }    \
                }                                                                                           \
                fl_team_settle(fl__team);                                                                   \
            }                                                                                               \
            fl_team_end();                                                                                  \
        } else {                                                                                            \
            size_t fl__done[FL_FRESH_MAX_OUTPUTS] = {0};                                                    \
            for (fl_index b = 0; b < (n_blocks) && !*fl__stop; b++) {                                      \
                FL__FRESH_BLOCK(fl__watch, fl__done, b, n_blocks);                                          \
                __VA_ARGS__;                                                                                \
            }                                                                                               \
        }                                                                                                   \
    } while (0)
#else
#define FL_FOR_BLOCKS_WATCHED(b, n_blocks, nt, watch, ...)                                                 \
    do {                                                                                                    \
        const volatile sig_atomic_t *const fl__stop = fl_stop_flag_for(n_blocks);                           \
        fl_fresh_watch *const fl__watch = (watch);                                                          \
        size_t fl__done[FL_FRESH_MAX_OUTPUTS] = {0};                                                        \
        (void)(nt);                                                                                         \
        for (fl_index b = 0; b < (n_blocks) && !*fl__stop; b++) {                                          \
            FL__FRESH_BLOCK(fl__watch, fl__done, b, n_blocks);                                              \
            __VA_ARGS__;                                                                                    \
        }                                                                                                   \
    } while (0)
#endif

/* ---- rows of classes (probabilistic_tpl.h) ---- */
/* Elements per chunk of a row: small enough to stay in L1 between the max and the sum of exps. */
#define FL_CHUNK 2048
/* Rows of at most FL_SMALL_C classes are processed a tile at a time, one row per vector lane. */
#define FL_SMALL_C 32
/* Rows whose stats are taken together (then log(s) is one vector loop): at most FL_GROUP_MAX rows and
 * about FL_GROUP_ELEMENTS elements, so that the group is still in cache when its outputs are written. */
#define FL_GROUP_MAX 256
#define FL_GROUP_ELEMENTS 8192

/* The stats of a group of rows of classes, by row r of the group (row_stats in probabilistic_tpl.h) */
typedef struct {
    double m[FL_GROUP_MAX];     /* the max (nan if the row has a nan) */
    double s[FL_GROUP_MAX];     /* sum_j exp(x_j - m) */
    double lg[FL_GROUP_MAX];    /* log s; nan where m is not finite */
    double so[FL_GROUP_MAX];    /* the sum over the classes but the target (s where there is none) */
    double diff[FL_GROUP_MAX];  /* on request: sum_j (x_j - m) */
    double rank[FL_GROUP_MAX];  /* on request: #{j : !(x_j <= x_t)} */
    /* on request, few classes (a cross-entropy Hessian's pass, ce_group_grad_hess): the terms exp(x_j - m) by
     * tiles (a tile's rows transposed, from row r0 at ex + r0 * n; the last tile padded to 16 rows at most),
     * their sums in double and the target's logit, by row */
    float ex[FL_GROUP_ELEMENTS + 16 * FL_SMALL_C];
    double sh[FL_GROUP_MAX + 16];
    float xt[FL_GROUP_MAX + 16];
} fl_group_stats;

/* The first target outside [0, n_cols) that is not ignore_index, in row order: FL_ERR_INDEX with its row and
 * value; else FL_OK. Run before any target is used as an index. */
static inline int fl_check_class_targets(const int64_t *target, fl_index n_rows, fl_index n_cols, int64_t ignore_index,
                                  fl_index *bad_position, int64_t *bad_value)
{
    for (fl_index i = 0; i < n_rows; i++) {
        const int64_t t = target[i];
        if (t != ignore_index && (t < 0 || t >= n_cols)) {
            *bad_position = i;
            *bad_value = t;
            return FL_ERR_INDEX;
        }
    }
    return FL_OK;
}

/* Scratch for per-block partial sums: on the stack for small calls, else one malloc per call. */
#define FL_STACK_PARTIALS 64
typedef struct {
    double stack[2 * FL_STACK_PARTIALS];
    double *p;    /* 2 doubles per block: loss, weight */
} fl_partials;

/* The partials start at -1: every kernel reads a block's slots as sums or as "first bad position, -1 if none",
 * so a block skipped by an interrupt (FL_FOR_BLOCKS) reports no error and no position to read. */
static inline int fl_partials_init(fl_partials *s, fl_index n_blocks)
{
    s->p = n_blocks <= FL_STACK_PARTIALS ? s->stack : (double *)malloc(2 * (size_t)n_blocks * sizeof(double));
    if (s->p == NULL) return 0;
    for (fl_index k = 0; k < 2 * n_blocks; k++) s->p[k] = -1.0;
    return 1;
}

static inline void fl_partials_free(fl_partials *s)
{
    if (s->p != s->stack) free(s->p);
}

/* Adds the partials in block order (the order that makes the result independent of n_threads). */
static inline void fl_partials_sum(const fl_partials *s, fl_index n_blocks, double *loss, double *weight)
{
    double l = 0.0, w = 0.0;
    for (fl_index b = 0; b < n_blocks; b++) {
        l += s->p[2 * b];
        w += s->p[2 * b + 1];
    }
    *loss = l;
    *weight = w;
}

static inline double fl_reduce(int reduction, double loss_sum, double weight_sum)
{
    /* mean over nothing: 0 / 0 = nan, as torch */
    return reduction == FL_REDUCTION_MEAN ? loss_sum / weight_sum : loss_sum;
}

/* ---- sums that vectorise ------------------------------------------------------------------------------------
 * gcc does not vectorise `sum += f(x[k])` in double without -ffast-math (it may not reassociate). So sums are
 * kept in FL_LANES partial sums, element k of [k0, k1) in lane (k - k0) % FL_LANES: FL_LANE_LOOP runs BODY (with
 * k and the lane l) over whole groups of FL_LANES, an inner loop of constant count that gcc vectorises, then
 * over the tail (BODY: the variadic part); fl_lane_sum adds the lanes in a fixed order. Same input, same bits, whatever the threads. */
#define FL_LANES 16
#define FL_LANE_LOOP(k, l, k0, k1, ...)                                                                    \
    do {                                                                                                   \
        fl_index k##_group = (k0);                                                                         \
        for (; k##_group + FL_LANES <= (k1); k##_group += FL_LANES)                                        \
            for (int l = 0; l < FL_LANES; l++) {                                                           \
                const fl_index k = k##_group + l;                                                          \
                __VA_ARGS__;                                                                               \
            }                                                                                              \
        for (int l = 0; k##_group + l < (k1); l++) {                                                       \
            const fl_index k = k##_group + l;                                                              \
            __VA_ARGS__;                                                                                   \
        }                                                                                                  \
    } while (0)

static inline double fl_lane_sum(double *acc)
{
    for (int w = FL_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}

/* ---- element-wise losses of (x, y) pairs: margin, regression ----------------------------------------------
 * FL_PAIR_KERNEL(NAME, T, CHECK, ELEM) defines kernel NAME over fl_pair_args for element type T.
 * ELEM is a statement that, from xv, yv of type T (and `a`, the args; k, the element's index), sets loss_t and
 * dloss_t (type T) to the loss and d loss / d xv of one element, and d2loss_t to d^2 loss / d xv^2 where the loss
 * has one (it starts at 0), before sample weighting (which is in double, as the sums). CHECK (FL_CHECK_*, a
 * constant) is the domain check of the inputs, taken in the same pass: an element outside it is an FL_ERR_LABEL
 * error reported at its first position (bad_position, bad_fvalue: the value checked); when a->check_first is set
 * (an output goes to the caller's buffer) the inputs are checked before anything is written. The mean divides by
 * the sum of sample weights (n without). Blocks of FL_BLOCK_ELEMENTS elements keep the sum independent of
 * n_threads. */
#define FL_IS_LABEL(v) ((v) == 1 || (v) == -1)
/* The checks in the pass (a NumPy check before the kernel was a serial pass of its own: np.flatnonzero(~(y >= 0))
 * took 4.4 ms of tweedie_loss's 9 ms on 10M float32, 2 threads) */
enum {
    FL_CHECK_NONE = 0,
    FL_CHECK_LABEL = 1,   /* y in {-1, +1} (the binary margin losses) */
    FL_CHECK_TWEEDIE = 2, /* y >= 0, and y > 0 where a->flag is FL_TWEEDIE_GAMMA (log y); nan fails */
    FL_CHECK_VAR = 3      /* v >= 0 (gaussian_nll's var; a nan passes: its loss is nan, as torch's) */
};
/* whether CHECK's y must be > 0 rather than >= 0 (loop-invariant: taken once) */
#define FL_CHECK_STRICT(CHECK, a) ((CHECK) == FL_CHECK_TWEEDIE && (a)->flag == FL_TWEEDIE_GAMMA)
/* whether element (y, v) fails CHECK; v is read only by FL_CHECK_VAR */
#define FL_CHECK_BAD(CHECK, strict, y, v)                                                                    \
    ((CHECK) == FL_CHECK_LABEL     ? !FL_IS_LABEL(y)                                                          \
     : (CHECK) == FL_CHECK_TWEEDIE ? ((strict) ? !((y) > 0) : !((y) >= 0))                                    \
     : (CHECK) == FL_CHECK_VAR     ? (v) < 0                                                                  \
                                   : 0)

/* ---- vector forms of element-wise losses (float data) -------------------------------------------------------
 * A velem function computes the loss, d loss / dx and d^2 loss / dx^2 vectors of n (<= FL__XU) vectors of x and y
 * (the last where the loss has one; where nothing stores it the compiler drops it), each step for
 * all n before the next (lockstep: see vmath.h); param and flag are the loss's options (hinge: margin and
 * squared). An fl_velem3_fn also takes a third input v (gaussian_nll's var; not read by the others) and a second
 * parameter. fl__velem_run runs one over float elements [i0, ...) of whole groups of FL_LANES, xu (at most
 * FL__XU) vectors at a time, then a group at a time; losses go into the FL_LANES lanes of acc (element k in
 * lane (k - i0) % FL_LANES, as FL_LANE_LOOP), in the same order whatever the grouping: same bits. Inputs are prefetched
 * FL_PREFETCH_BYTES ahead (a C harness summing (a - b)^2 over two 40 MB arrays from memory, 2 threads: 10-15%
 * faster with it, little change from the L3). With a check (FL_CHECK_*), the elements failing it are counted into
 * *n_bad (strict: FL_CHECK_STRICT's value). Returns where it stopped. */
#define FL_PREFETCH_BYTES 2048
/* the prefetch of the cache line FL_PREFETCH_BYTES past p (a hint: past an array's end it reads nothing); for
 * writing: an output's line, fetched for ownership ahead of its store */
FL_INLINE void fl_prefetch_ahead(const void *p) { __builtin_prefetch((const char *)p + FL_PREFETCH_BYTES, 0, 3); }
FL_INLINE void fl_prefetch_ahead_w(void *p) { __builtin_prefetch((char *)p + FL_PREFETCH_BYTES, 1, 3); }
#ifdef FL_VF_N
/* The prefetch of the above for vector u of a group loaded from element i of x (float data of kind st): one a
 * cache line, so only for the vectors that start one (a constant where inlined). For the loops that compute more
 * than they read (the distribution measures' logs), whose own loads fell behind the memory: kl_divergence
 * 100,000 x 1,000 float32, Intel Xeon (AVX-512), 2 threads, 37.9 -> 30.6 ms (the streaming read of p and q: 26
 * ms; a streaming read itself gains nothing from it). */
FL_INLINE void fl_prefetch_vec(const void *x, fl_index i, const int u, const int st)
{
    if (u * FL_VF_N * FL_ST_SIZE(st) % 64 == 0) fl_prefetch_ahead((const char *)x + (size_t)i * FL_ST_SIZE(st));
}
typedef void (*fl_velem_fn)(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss, float param,
                            int flag, int n);
/* An fl_velem3_fn's flag also has FL_VELEM3_SUM_ONLY where no loss is stored (the reductions, with or without the
 * derivatives: the loss alone and NAME_and_grad give the same sum): the losses are only summed, and may take a
 * float form whose per-element roundings a sum averages out (gaussian_nll: a double form costs 2-3x; see there) */
#define FL_VELEM3_SUM_ONLY (1 << 30)
typedef void (*fl_velem3_fn)(const fl_vf *x, const fl_vf *y, const fl_vf *v, fl_vf *loss, fl_vf *dloss,
                             fl_vf *d2loss, float param, float param2, int flag, int n);
/* A velem whose losses are doubles (kl_div's, where its terms are double already): 2n vectors, loss[u] the low
 * half of vector u's lanes, loss[n + u] the high half, summed as they are where nothing stores a loss (the
 * reductions, with or without the derivatives: the same sum either way), not rounded to float and widened back.
 * err: NULL, or (the reductions, FL_PAIR_KERNEL_VD) the terms may come from a float form (the derivatives not:
 * they are the same either way), err[u] a bound on each lane's error in units of 2^-24 (0 where the term is as
 * the double form's): FL_PAIR_KERNEL_VD keeps such a sum only where the bounds add up to less than
 * FL_FLOAT_TERMS_EPS of it. */
typedef void (*fl_velemd_fn)(const fl_vf *x, const fl_vf *y, fl_vd *loss, fl_vf *dloss, fl_vf *d2loss,
                             float param, int flag, fl_vf *err, int n);

/* One step of n vectors from k0. velem or velem3 (the other NULL); v read where has_v. Sample weights sw (or
 * NULL) as the element loop of FL_PAIR_KERNEL_V applies them, in double: loss w l (stored rounded, summed as it
 * is), gradient and Hessian (g w) scale rounded once to float: the same bits. Without them the float loss is
 * summed widened, the gradient scaled in float (vscale). */
FL_INLINE void fl__velem_step(fl_velem_fn velem, fl_velem3_fn velem3, fl_velemd_fn velemd, const int check,
                              const int strict,
                              const void *FL_RESTRICT x,
                              const void *FL_RESTRICT y, const void *FL_RESTRICT v, const int has_v,
                              const double *FL_RESTRICT sw, float *FL_RESTRICT lr, float *FL_RESTRICT gr,
                              float *FL_RESTRICT hr, fl_index k0, const int n, float param, float param2, int flag,
                              double scale, fl_vf vscale, fl_vd *lo, fl_vd *hi, fl_vfi *bad, fl_vf *err,
                              const int st)
{
    enum { VPER = FL_LANES / FL_VF_N };
    fl_vf xv[FL__XU], yv[FL__XU], vv[FL__XU], lv[FL__XU], gv[FL__XU], hv[FL__XU];
    FL__EACH(u, n) {
        const fl_index at = k0 + u * FL_VF_N;
        fl_prefetch_vec(x, at, u, st); /* a line each */
        fl_prefetch_vec(y, at, u, st);
        if (has_v) fl_prefetch_vec(v, at, u, st);
        if (sw && u * FL_VF_N * 8 % 64 == 0) __builtin_prefetch(sw + at + 2 * FL_PREFETCH_BYTES / 8, 0, 3);
        /* the outputs' lines too, for writing: a plain store reads its line first, and waiting for that held up
         * the loop (10M float32 into held grad_out / hess_out, 2 threads: mse_loss_grad_hess 5.30 -> 3.34 ms,
         * exponential 6.39 -> 4.53, tweedie 8.93 -> 7.94; logistic_loss_and_grad 4.95 -> 4.52) */
        if (gr && u * FL_VF_N * 4 % 64 == 0) fl_prefetch_ahead_w(gr + at);
        if (hr && u * FL_VF_N * 4 % 64 == 0) fl_prefetch_ahead_w(hr + at);
        xv[u] = fl__vf_load_st(x, at, st);
        yv[u] = fl__vf_load_st(y, at, st);
        if (has_v) vv[u] = fl__vf_load_st(v, at, st);
    }
    FL__EACH(u, n) { /* the checks on the inputs alone, for either form below */
        if (check == FL_CHECK_LABEL) *bad |= (yv[u] != 1.0f) & (yv[u] != -1.0f);
        else if (check == FL_CHECK_TWEEDIE) *bad |= strict ? ~(yv[u] > 0.0f) : ~(yv[u] >= 0.0f);
        else if (check == FL_CHECK_VAR && has_v) *bad |= vv[u] < 0.0f;
    }
    if (velemd) { /* lr and sw NULL (fl_velem_part, FL_PAIR_KERNEL_VD); err: the float form's bounds summed */
        fl_vd ld[2 * FL__XU];
        fl_vf ev[FL__XU] = {0}; /* set by velemd where err (gcc cannot tell) */
        velemd(xv, yv, ld, gv, hv, param, flag, err ? ev : NULL, n);
        FL__EACH(u, n) {
            if (err) *err += ev[u];
            const fl_index at = k0 + u * FL_VF_N;
            if (gr) fl__vf_store(gr + at, gv[u] * vscale);
            if (hr) fl__vf_store(hr + at, hv[u] * vscale);
            lo[u % VPER] += ld[u];
            hi[u % VPER] += ld[n + u];
        }
        return;
    }
    /* hv: dead code where hr is a constant NULL (inlined) */
    if (velem3) velem3(xv, yv, vv, lv, gv, hv, param, param2, lr ? flag : flag | FL_VELEM3_SUM_ONLY, n);
    else velem(xv, yv, lv, gv, hv, param, flag, n);
    FL__EACH(u, n) {
        const fl_index at = k0 + u * FL_VF_N;
        if (sw) {
            const fl_vd w0 = fl__vd_load(sw + at), w1 = fl__vd_load(sw + at + FL_VD_N);
            fl_vd l0, l1, g0, g1;
            fl__vf_widen(lv[u], &l0, &l1);
            l0 *= w0;
            l1 *= w1;
            if (lr) fl__vf_store(lr + at, fl__vf_narrow(l0, l1));
            if (gr) {
                fl__vf_widen(gv[u], &g0, &g1);
                fl__vf_store(gr + at, fl__vf_narrow(g0 * w0 * scale, g1 * w1 * scale));
            }
            if (hr) {
                fl__vf_widen(hv[u], &g0, &g1);
                fl__vf_store(hr + at, fl__vf_narrow(g0 * w0 * scale, g1 * w1 * scale));
            }
            lo[u % VPER] += l0;
            hi[u % VPER] += l1;
        } else {
            if (lr) fl__vf_store(lr + at, lv[u]);
            if (gr) fl__vf_store(gr + at, gv[u] * vscale);
            if (hr) fl__vf_store(hr + at, hv[u] * vscale);
            fl__vf_add_widened(&lo[u % VPER], &hi[u % VPER], lv[u]);
        }
    }
}

FL_INLINE fl_index fl__velem_run(fl_velem_fn velem, fl_velem3_fn velem3, fl_velemd_fn velemd, const int check,
                                 const int strict,
                                 const void *FL_RESTRICT x,
                                 const void *FL_RESTRICT y, const void *FL_RESTRICT v, const int has_v,
                                 const double *FL_RESTRICT sw, float *FL_RESTRICT lr, float *FL_RESTRICT gr,
                                 float *FL_RESTRICT hr, fl_index i0, fl_index i1, float param, float param2, int flag,
                                 double scale, double *acc, int *n_bad, double *err, const int st, const int xu)
{
    enum { VPER = FL_LANES / FL_VF_N }; /* vectors per group of FL_LANES elements */
    fl_vd lo[VPER], hi[VPER];
    for (int u = 0; u < VPER; u++) lo[u] = hi[u] = (fl_vd){0};
    fl_vfi bad = (fl_vfi){0};
    fl_vf ev = (fl_vf){0}; /* err's: in float, a block's at most 2^11 adds a lane (FL_FLOAT_TERMS_EPS's margin) */
    const fl_vf vscale = (fl_vf){0} + (float)scale;
    fl_index k0 = i0;
    for (; k0 + xu * FL_VF_N <= i1; k0 += xu * FL_VF_N)
        fl__velem_step(velem, velem3, velemd, check, strict, x, y, v, has_v, sw, lr, gr, hr, k0, xu, param, param2,
                       flag, scale, vscale, lo, hi, &bad, err ? &ev : NULL, st);
    for (; k0 + FL_LANES <= i1; k0 += FL_LANES)
        fl__velem_step(velem, velem3, velemd, check, strict, x, y, v, has_v, sw, lr, gr, hr, k0, VPER, param,
                       param2, flag, scale, vscale, lo, hi, &bad, err ? &ev : NULL, st);
    for (int u = 0; u < VPER; u++)
        for (int l = 0; l < FL_VD_N; l++) {
            acc[u * FL_VF_N + l] += lo[u][l];
            acc[u * FL_VF_N + FL_VD_N + l] += hi[u][l];
        }
    for (int l = 0; l < FL_VF_N; l++) *n_bad += bad[l] != 0;
    if (err)
        for (int l = 0; l < FL_VF_N; l++) *err += ev[l];
    return k0;
}

/* The element-wise losses' vectors a step: 4 where the registers hold 8 (AVX-512). Their logs and exps are long
 * chains, their double forms two vectors of doubles a float vector, and 8 in lockstep spilled: the velem of two
 * inputs without sample weights (distributions_tpl.h's; in L1, 1 thread, Intel Xeon: kl_div 3.87 -> 3.59 ms,
 * binary_cross_entropy_with_logits 4.36 -> 4.14 ms with 4), and the pair kernels of margin and regression (the
 * same either way on that Intel Xeon; on an AMD EPYC Zen 4, AVX-512, 10M float32, 2 threads, interleaved:
 * poisson_nll_loss 6.47 -> 5.68 ms, gaussian_nll_loss 4.25 -> 3.59, tweedie_loss 4.09 -> 3.54, mse_loss 3.12 ->
 * 2.83, the _and_grad forms 0-11% faster, none slower by more than the noise). cross_entropy's exps keep FL__XU
 * (1.5% slower with 4). */
#define FL_VELEM_PART_XU (FL__XU < 4 ? FL__XU : 4)
FL_INLINE fl_index fl_velem_part(fl_velem_fn velem, fl_velemd_fn velemd, const int check,
                                 const void *FL_RESTRICT x, const void *FL_RESTRICT y, float *FL_RESTRICT lr,
                                 float *FL_RESTRICT gr, float *FL_RESTRICT hr, fl_index i0, fl_index i1, float param,
                                 int flag, double scale, double *acc, int *n_bad, double *err, const int st)
{
    if (velemd && !lr) /* the reductions: the double losses summed (velemd's float form where err) */
        return fl__velem_run(NULL, NULL, velemd, check, 0, x, y, NULL, 0, NULL, NULL, gr, hr, i0, i1, param,
                             0.0f, flag, scale, acc, n_bad, err, st, FL_VELEM_PART_XU);
    return fl__velem_run(velem, NULL, NULL, check, 0, x, y, NULL, 0, NULL, lr, gr, hr, i0, i1, param, 0.0f, flag,
                         scale, acc, n_bad, NULL, st, FL_VELEM_PART_XU);
}
#else /* no vector extensions: the element loops do everything */
typedef const void *fl_velem_fn;
typedef const void *fl_velemd_fn;
FL_INLINE fl_index fl_velem_part(fl_velem_fn velem, fl_velemd_fn velemd, int check, const void *x, const void *y,
                                 float *lr, float *gr, float *hr, fl_index i0, fl_index i1, float param, int flag,
                                 double scale, double *acc, int *n_bad, double *err, int st)
{
    (void)velem, (void)velemd, (void)check, (void)x, (void)y, (void)lr, (void)gr, (void)hr, (void)i1, (void)param;
    (void)flag, (void)scale, (void)acc, (void)n_bad, (void)err, (void)st;
    return i0;
}
#endif

/* FL_PAIR_KERNEL_V(NAME, T, CHECK, ELEM, VELEM) and FL_PAIR_KERNEL_V3(NAME, T, CHECK, ELEM, VELEM3, HAS_V): as
 * FL_PAIR_KERNEL, and float data (f32, f16, bf16) is computed by the vector form VELEM (an fl_velem_fn; param =
 * a->param, flag = a->flag) or VELEM3 (an fl_velem3_fn, also param2 = a->param2 and, where HAS_V, the third input
 * a->v), sample weights included: written with vmath.h's vector functions (FMA, vscalefps), in lockstep, the
 * losses with an exp or a log run 1.7-4x as fast as what gcc makes of ELEM (the others gain the prefetch). ELEM
 * does float64, and the last FL_LANES - 1 elements of a block of float data: there, in one loop with the outputs
 * chosen at run time (it was 12 loops, one per combination, each vectorised with the math inlined: most of the
 * build time of regression.c and margin.c). The loss sums stay in double, in the lanes ELEM would use: same
 * input, same bits, whatever the threads. */
#ifdef FL_VF_N
#define FL__HAS_VELEM(HAS_VELEM) (HAS_VELEM)
/* the vector part of a block of float data, with the Hessian (HR: hs or NULL) or without */
#define FL__PAIR_VECTOR_PART(CHECK, VELEM, VELEM3, VELEMD, HAS_V, GR, HR)                                  \
    fl__velem_run(VELEM, VELEM3, VELEMD, CHECK, FL_CHECK_STRICT(CHECK, a), a->x, a->y, HAS_V ? a->v : NULL,    \
                  HAS_V, a->sample_weight, (float *)a->loss_rows, GR, HR, i0, i1, (float)a->param,             \
                  (float)a->param2, a->flag, scale, acc, n_bad, NULL, FL_ST, FL_VELEM_PART_XU)
/* VELEMD over [I0, I1) (FL_PAIR_KERNEL_VD's reductions), its float form where ERR (its bounds added to *ERR) */
#define FL__PAIR_VD_PART(CHECK, VELEMD, GR, HR, I0, I1, ERR)                                                \
    fl__velem_run(NULL, NULL, VELEMD, CHECK, FL_CHECK_STRICT(CHECK, a), a->x, a->y, NULL, 0, NULL, NULL, GR,   \
                  HR, I0, I1, (float)a->param, (float)a->param2, a->flag, scale, acc, n_bad, ERR, FL_ST,       \
                  FL_VELEM_PART_XU)
/* the same with the derivatives asked for (gr, hs: the block's pointers) */
#define FL__PAIR_VD_PARTS(CHECK, VELEMD, I0, I1, ERR)                                                       \
    (!has_gr ? FL__PAIR_VD_PART(CHECK, VELEMD, NULL, NULL, I0, I1, ERR)                                     \
     : !has_hs ? FL__PAIR_VD_PART(CHECK, VELEMD, (float *)a->grad, NULL, I0, I1, ERR)                        \
     : FL__PAIR_VD_PART(CHECK, VELEMD, (float *)a->grad, (float *)a->hess, I0, I1, ERR))
#else
#define FL__HAS_VELEM(HAS_VELEM) 0
#define FL__PAIR_VECTOR_PART(CHECK, VELEM, VELEM3, VELEMD, HAS_V, GR, HR) i0
#define FL__PAIR_VD_PARTS(CHECK, VELEMD, I0, I1, ERR) (I0)
#endif

/* The float terms of FL_PAIR_KERNEL_VD, a posteriori: a sum of terms whose error bounds (an fl_velemd_fn's err,
 * units of 2^-24) add up to err is kept where they are within FL_FLOAT_TERMS_EPS float32 eps (2^-23) of it
 * (nan: a nan either way); the bounds' own sum in float (at most 2^11 adds a lane, a relative 2^-13) is taken
 * 2^-12 larger. A block tries the form on its first FL_FLOAT_PROBE elements, then on all of it, and where
 * either fails does the block again in double (a decision of its data alone: the same bits whatever the
 * threads); the call, where the blocks' sums cancel each other so that their bounds are not within it of the
 * total, does every block again in double. A failing probe is time lost: 256 elements of a block of 16,384 (kl_div
 * batchmean with q close to p, where it always fails: +1.5%; it was 1,024: +5-9%); simulated over unrelated rows
 * of 10, 1,000 and 32,000 classes, 64 elements were the least that never failed where the block passes. */
#define FL_FLOAT_TERMS_EPS 1.0
#define FL_FLOAT_PROBE 256
static inline int fl_float_terms_ok(double err, double sum)
{
    return !(err * (0x1p-24 * (1.0 + 0x1p-12)) > FL_FLOAT_TERMS_EPS * 0x1p-23 * fabs(sum));
}
/* fl_lane_sum of a copy */
static inline double fl_lane_sum_of(const double *acc)
{
    double c[FL_LANES];
    for (int l = 0; l < FL_LANES; l++) c[l] = acc[l];
    return fl_lane_sum(c);
}
/* A block's float form over [I0, I1): RUN, an expression of fl_s0, fl_s1, fl_e (declared here), runs [fl_s0,
 * fl_s1) adding its terms to ACC (the block's double[FL_LANES]), in the float form with its bounds added to *fl_e
 * where fl_e is not NULL, and gives where it stopped (set in K0). ERR: NULL (the double form alone) or the
 * block's bound, set here (0 where the block is in double). RESET: the statement that zeroes the block's sums. */
#define FL_FLOAT_TERMS_BLOCK(K0, I0, I1, ERR, ACC, RUN, RESET)                                               \
    do {                                                                                                     \
        double *fl_e = (ERR);                                                                                \
        if (fl_e) *fl_e = 0.0;                                                                               \
        fl_index fl_s0 = (I0), fl_s1 = fl_e && (I1) - (I0) > FL_FLOAT_PROBE ? (I0) + FL_FLOAT_PROBE : (I1);  \
        for (;;) {                                                                                           \
            (K0) = (RUN);                                                                                    \
            if (!fl_e) break;                                                                                \
            if (!fl_float_terms_ok(*fl_e, fl_lane_sum_of(ACC))) { /* the block again, in double */          \
                *fl_e = 0.0, fl_e = NULL, fl_s0 = (I0), fl_s1 = (I1);                                        \
                RESET;                                                                                       \
            } else if (fl_s1 == (I1)) {                                                                      \
                break;                                                                                       \
            } else {                                                                                         \
                fl_s0 = (K0), fl_s1 = (I1);                                                                  \
            }                                                                                                \
        }                                                                                                    \
    } while (0)
/* The call's check: whether the blocks' bounds (errs, one a block; freed here) are within FL_FLOAT_TERMS_EPS of
 * the total sum of their terms, else (the blocks' sums cancel each other) every block is done again in double */
static inline int fl_float_terms_kept(fl_partials *errs, fl_index n_blocks, double sum)
{
    double err = 0.0;
    for (fl_index b = 0; b < n_blocks; b++) err += errs->p[b];
    fl_partials_free(errs);
    return fl_float_terms_ok(err, sum);
}
/* The tail loop is kept scalar: vectorised with the outputs chosen at run time, gcc makes masked loads and stores
 * of the absent ones (a NULL page: a microcode assist each) for at most FL_LANES - 1 elements. The empty asm is a
 * statement gcc's vectoriser does not take. */
#if defined(__GNUC__) || defined(__clang__)
#define FL__NOT_VECTORISED() __asm__("")
#else
#define FL__NOT_VECTORISED() ((void)0)
#endif

#define FL_PAIR_KERNEL(NAME, T, CHECK, ELEM) FL__PAIR_KERNEL(NAME, T, CHECK, ELEM, 0, NULL, NULL, 0, 0, NULL, 0)
#define FL_PAIR_KERNEL_V(NAME, T, CHECK, ELEM, VELEM)                                                         \
    FL__PAIR_KERNEL(NAME, T, CHECK, ELEM, 1, VELEM, NULL, 0, 0, NULL, 0)
#define FL_PAIR_KERNEL_V3(NAME, T, CHECK, ELEM, VELEM3, HAS_V)                                                \
    FL__PAIR_KERNEL(NAME, T, CHECK, ELEM, 1, NULL, VELEM3, HAS_V, 0, NULL, 0)
/* FL_PAIR_KERNEL_VD: as FL_PAIR_KERNEL_V, and where no loss is stored and there are no sample weights (the
 * reductions, with or without the derivatives) the vector part runs VELEMD (an fl_velemd_fn giving the same
 * losses as VELEM before their rounding to float), whose double losses are summed as they are: a loss computed
 * in double is not rounded to float and widened back (poisson_nll: 4 of its ~55 operations a vector of 16). There,
 * where FLOATS (an expression of the fl_pair_args a) holds, VELEMD is asked for its float form (err), kept as
 * FL_FLOAT_TERMS_EPS says: the loss alone and NAME_and_grad's the same sum, the derivatives as without it. */
#define FL_PAIR_KERNEL_VD(NAME, T, CHECK, ELEM, VELEM, VELEMD, FLOATS)                                       \
    FL__PAIR_KERNEL(NAME, T, CHECK, ELEM, 1, VELEM, NULL, 0, 1, VELEMD, FLOATS)

/* element k (in lane j) of the element loop */
#define FL__PAIR_ELEMENT(T, CHECK, ELEM)                                                                    \
    {                                                                                                        \
        const T xv = FL_LD(xs[k]), yv = FL_LD(ys[k]);                                                        \
        T loss_t, dloss_t, d2loss_t = 0;                                                                     \
        double loss_w = 0.0; /* where ELEM sets has_w: its loss before the rounding to T, summed where no     \
                              * loss is stored and no sample weights (as FL_PAIR_KERNEL_VD's vector part) */  \
        int has_w = 0;                                                                                       \
        ELEM;                                                                                                \
        if (CHECK) /* branch-free: the loop stays vectorisable */                                           \
            n_bad[j] += FL_CHECK_BAD(CHECK, strict, yv, CHECK == FL_CHECK_VAR ? FL_LD(((const S *)a->v)[k]) : 0); \
        const double loss = HAS_SW ? (double)loss_t * sws[k] : has_w && !HAS_LR ? loss_w : (double)loss_t;   \
        if (HAS_LR) lr[k] = HAS_SW ? (T)loss : loss_t;                                                       \
        if (HAS_GR) gr[k] = (T)(HAS_SW ? (double)dloss_t * sws[k] * scale : (double)dloss_t * scale);        \
        if (HAS_HS) hs[k] = (T)(HAS_SW ? (double)d2loss_t * sws[k] * scale : (double)d2loss_t * scale);      \
        acc[j] += loss;                                                                                      \
    }

/* the value that CHECK reads at element i (y, or v for FL_CHECK_VAR), as double; whether it fails the check */
#define FL__PAIR_CHECKED(CHECK, a, i)                                                                        \
    ((double)FL_LD(((const S *)((CHECK) == FL_CHECK_VAR ? (a)->v : (a)->y))[i]))
#define FL__PAIR_BAD_AT(CHECK, a, i)                                                                         \
    FL_CHECK_BAD(CHECK, FL_CHECK_STRICT(CHECK, a), (double)FL_LD(((const S *)(a)->y)[i]), FL__PAIR_CHECKED(CHECK, a, i))
#define FL__PAIR_KERNEL(NAME, T, CHECK, ELEM, HAS_VELEM, VELEM, VELEM3, HAS_V, HAS_VD, VELEMD, FLOATS)      \
    /* HAS_SW, HAS_LR, HAS_GR, HAS_HS are constants where this is inlined for the whole range (one loop per      \
     * combination): with the NULL tests inside the loop gcc vectorised them into masked loads and stores of the  \
     * NULL page, each a microcode assist (seen: 65% of exponential_loss's time in two such loads). TAIL: the     \
     * last < FL_LANES elements of a block only, with the flags at run time, one element at a time. */         \
    FL_INLINE void FL_CAT(NAME, span)(const fl_pair_args *a, fl_index i0, fl_index i1, double scale,           \
                                      double *FL_RESTRICT acc, int *FL_RESTRICT n_bad, const int HAS_SW,        \
                                      const int HAS_LR, const int HAS_GR, const int HAS_HS, const int TAIL)     \
    {                                                                                                        \
        const S *FL_RESTRICT xs = (const S *)a->x;                                                           \
        const S *FL_RESTRICT ys = (const S *)a->y;                                                           \
        const double *FL_RESTRICT sws = a->sample_weight;                                                    \
        T *FL_RESTRICT lr = (T *)a->loss_rows;                                                               \
        T *FL_RESTRICT gr = (T *)a->grad;                                                                    \
        T *FL_RESTRICT hs = (T *)a->hess;                                                                    \
        const int strict = FL_CHECK_STRICT(CHECK, a);                                                       \
        (void)strict;                                                                                        \
        if (TAIL)                                                                                            \
            for (int j = 0; i0 + j < i1; j++) {                                                              \
                const fl_index k = i0 + j;                                                                   \
                FL__NOT_VECTORISED();                                                                        \
                FL__PAIR_ELEMENT(T, CHECK, ELEM)                                                            \
            }                                                                                                \
        else                                                                                                 \
            FL_LANE_LOOP(k, j, i0, i1, FL__PAIR_ELEMENT(T, CHECK, ELEM));                                   \
    }                                                                                                        \
    /* the first element of [c0, c1) that fails CHECK, or -1: counted branch-free (a loop with an early exit    \
     * did not vectorise: 3x the kernel's own time seen), then searched for where there is one */             \
    FL_BLOCK_FN fl_index FL_CAT(NAME, first_bad)(const fl_pair_args *a, fl_index c0, fl_index c1)           \
    {                                                                                                        \
        const S *ys = (const S *)a->y, *vs = (const S *)a->v;                                                \
        const int strict = FL_CHECK_STRICT(CHECK, a);                                                        \
        (void)vs, (void)strict;                                                                              \
        int n_bad = 0;                                                                                       \
        for (fl_index i = c0; i < c1; i++) {                                                                 \
            const T yv = FL_LD(ys[i]), vv = CHECK == FL_CHECK_VAR ? FL_LD(vs[i]) : 0;                        \
            n_bad += FL_CHECK_BAD(CHECK, strict, yv, vv);                                                    \
        }                                                                                                    \
        if (n_bad)                                                                                           \
            for (fl_index i = c0; i < c1; i++)                                                               \
                if (FL__PAIR_BAD_AT(CHECK, a, i)) return i;                                                  \
        return -1;                                                                                           \
    }                                                                                                        \
    /* err: NULL, or (FL_PAIR_KERNEL_VD's reductions) the float form tried, *err its bounds' sum (0: double) */ \
    static void FL_CAT(NAME, block)(const fl_pair_args *args, fl_index i0, fl_index i1, double scale,       \
                                    double *part, fl_index *bad, double *err)                                \
    {                                                                                                        \
        const fl_pair_args local = *args; /* in locals: stores to the outputs cannot alias the options */   \
        const fl_pair_args *a = &local;                                                                      \
        double acc[FL_LANES] = {0};                                                                          \
        int n_bad[FL_LANES] = {0};                                                                           \
        fl_index first_bad = -1;                                                                             \
        const int has_sw = a->sample_weight != NULL, has_lr = a->loss_rows != NULL, has_gr = a->grad != NULL;  \
        const int has_hs = has_gr && a->hess != NULL; /* asked for with the gradient only (NAME_grad_hess) */  \
        if (err) *err = 0.0;                                                                                 \
        if (FL__HAS_VELEM(HAS_VELEM) && FL_ST != FL_ST_F64) {                                                \
            /* three instances of the vector part: the gradient and the Hessian cost nothing where not asked */ \
            fl_index k0;                                                                                     \
            if ((HAS_VD) && !has_sw && !has_lr) {                                                            \
                /* with err (only where FLOATS), the float form (FL_FLOAT_TERMS_EPS). One call of each      \
                 * instance. */                                                                              \
                FL_FLOAT_TERMS_BLOCK(k0, i0, i1, err, acc, FL__PAIR_VD_PARTS(CHECK, VELEMD, fl_s0, fl_s1, fl_e), \
                                     for (int j = 0; j < FL_LANES; j++) (acc[j] = 0.0, n_bad[j] = 0));       \
            } else if (!has_gr) k0 = FL__PAIR_VECTOR_PART(CHECK, VELEM, VELEM3, NULL, HAS_V, NULL, NULL);    \
            else if (!has_hs)                                                                                \
                k0 = FL__PAIR_VECTOR_PART(CHECK, VELEM, VELEM3, NULL, HAS_V, (float *)a->grad, NULL);        \
            else k0 = FL__PAIR_VECTOR_PART(CHECK, VELEM, VELEM3, NULL, HAS_V, (float *)a->grad, (float *)a->hess); \
            FL_CAT(NAME, span)(a, k0, i1, scale, acc, n_bad, has_sw, has_lr, has_gr, has_hs, 1);             \
        } else                                                                                               \
            switch (has_sw | has_lr << 1 | has_gr << 2 | has_hs << 3) {                                      \
            case 0: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 0, 0, 0, 0, 0); break;                  \
            case 1: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 1, 0, 0, 0, 0); break;                  \
            case 2: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 0, 1, 0, 0, 0); break;                  \
            case 3: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 1, 1, 0, 0, 0); break;                  \
            case 4: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 0, 0, 1, 0, 0); break;                  \
            case 5: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 1, 0, 1, 0, 0); break;                  \
            case 6: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 0, 1, 1, 0, 0); break;                  \
            case 7: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 1, 1, 1, 0, 0); break;                  \
            case 12: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 0, 0, 1, 1, 0); break;                 \
            case 13: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 1, 0, 1, 1, 0); break;                 \
            case 14: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 0, 1, 1, 1, 0); break;                 \
            default: FL_CAT(NAME, span)(a, i0, i1, scale, acc, n_bad, 1, 1, 1, 1, 0); break;                 \
            }                                                                                                \
        fl_index any_bad = 0;                                                                                \
        for (int j = 0; j < FL_LANES; j++) any_bad += n_bad[j];                                              \
        if (CHECK && any_bad) /* rare: find the first bad element of the block */                           \
            first_bad = FL_CAT(NAME, first_bad)(a, i0, i1);                                                  \
        *part = fl_lane_sum(acc);                                                                            \
        *bad = first_bad;                                                                                    \
    }                                                                                                        \
    int FL_IMPL(NAME)(fl_pair_args *a)                                                                       \
    {                                                                                                        \
        if (CHECK && a->check_first) {                                                                      \
            /* before anything is written: a pass of its own over the checked input, on the kernel's threads  \
             * (serial, it was a third of a 10M float32 gaussian_nll_loss_grad_hess) */                      \
            const fl_index n_chunks = fl_n_blocks(a->n, FL_BLOCK_ELEMENTS);                                  \
            fl_partials first;                                                                               \
            if (!fl_partials_init(&first, n_chunks)) return FL_ERR_NOMEM;                                    \
            const int nt = fl_threads_for(a->n_threads, a->n, n_chunks); /* the pragma names nt */           \
            FL_FOR_BLOCKS_READING(c, n_chunks, nt, {                                                         \
                first.p[c] = (double)FL_CAT(NAME, first_bad)(a, c * FL_BLOCK_ELEMENTS,                       \
                                                             a->n - c * FL_BLOCK_ELEMENTS > FL_BLOCK_ELEMENTS  \
                                                                 ? (c + 1) * FL_BLOCK_ELEMENTS : a->n);        \
            });                                                                                              \
            for (fl_index c = 0; c < n_chunks; c++)                                                          \
                if (first.p[c] >= 0.0) {                                                                     \
                    a->bad_position = (fl_index)first.p[c];                                                  \
                    a->bad_fvalue = FL__PAIR_CHECKED(CHECK, a, a->bad_position);                             \
                    fl_partials_free(&first);                                                                \
                    return FL_ERR_LABEL;                                                                     \
                }                                                                                            \
            fl_partials_free(&first);                                                                        \
        }                                                                                                    \
        double den = (double)a->n;                                                                           \
        if (a->sample_weight) {                                                                              \
            den = 0.0;                                                                                       \
            for (fl_index i = 0; i < a->n; i++) den += a->sample_weight[i];                                  \
        }                                                                                                    \
        const double scale = a->reduction == FL_REDUCTION_MEAN ? 1.0 / den : 1.0;                            \
        const fl_index per_block = FL_BLOCK_ELEMENTS;                                                        \
        const fl_index n_blocks = fl_n_blocks(a->n, per_block);                                              \
        const int nt = fl_threads_for(a->n_threads, a->n, n_blocks);                                         \
        /* the float form where VELEMD has one and the losses are summed (FL_FLOAT_TERMS_EPS) */                \
        int exact = !((FLOATS) && FL__HAS_VELEM(HAS_VELEM) && FL_ST != FL_ST_F64 && !a->sample_weight &&   \
                      !a->loss_rows);                                                                        \
        fl_partials part, errs;                                                                              \
        if (!fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;                                         \
        if (!exact && !fl_partials_init(&errs, n_blocks)) {                                                  \
            fl_partials_free(&part);                                                                         \
            return FL_ERR_NOMEM;                                                                             \
        }                                                                                                    \
        double sum;                                                                                          \
        for (;;) {                                                                                           \
            FL_FOR_BLOCKS(b, n_blocks, nt, {                                                                 \
                fl_index i1 = (b + 1) * per_block < a->n ? (b + 1) * per_block : a->n;                       \
                fl_index bad;                                                                                \
                FL_CAT(NAME, block)(a, b * per_block, i1, scale, &part.p[2 * b], &bad, exact ? NULL : &errs.p[b]); \
                part.p[2 * b + 1] = (double)bad;                                                             \
            });                                                                                              \
            for (fl_index b = 0; b < n_blocks; b++)                                                          \
                if (part.p[2 * b + 1] >= 0.0) {                                                              \
                    a->bad_position = (fl_index)part.p[2 * b + 1];                                           \
                    a->bad_fvalue = FL__PAIR_CHECKED(CHECK, a, a->bad_position);                            \
                    fl_partials_free(&part);                                                                 \
                    if (!exact) fl_partials_free(&errs);                                                     \
                    return FL_ERR_LABEL;                                                                     \
                }                                                                                            \
            double unused;                                                                                   \
            fl_partials_sum(&part, n_blocks, &sum, &unused);                                                 \
            if (exact || fl_float_terms_kept(&errs, n_blocks, sum)) break;                                   \
            exact = 1;                                                                                       \
        }                                                                                                    \
        fl_partials_free(&part);                                                                             \
        a->loss_total = fl_reduce(a->reduction, sum, den);                                                   \
        return FL_OK;                                                                                        \
    }

#endif
