/* bench_kernels.c -- the pace of the memory system, for the benchmark's floors (fastloss/bench/timing.py):
 * a streaming read (a float32 buffer summed in vector lanes) and a streaming write (a float32 buffer filled with
 * vector stores), each over fixed blocks with OpenMP, like the kernels whose floors they give. A workload's floor
 * is then its bytes read over the read bandwidth (plus bytes written over the write bandwidth).
 *
 * Compiled once per SIMD level like the family files (fl_stream_read_f32_avx2, ...). The public entry points are
 * defined once, in the scalar copy, and run the level in use (fl_simd_level), so that the floor is measured with
 * the vector width the kernels have. They are not in the kernel table (FL_KERNEL_LIST): they are not losses. */
#include "common.h"

/* 64 float lanes: 8 independent ymm (4 zmm, 16 xmm) accumulators, enough to keep two loads a cycle going
 * despite the add latency, so that the sum measures the memory and not the adder. gcc vectorises the lane loop
 * (each lane is its own sum: no reassociation, no -ffast-math needed). */
#define FL_STREAM_LANES 64
/* 256 KiB blocks: large enough that the OpenMP hand-out is negligible, small enough to share the work evenly. */
#define FL_STREAM_BLOCK ((fl_index)1 << 16)

FL_BLOCK_FN double stream_read_block(const float *FL_RESTRICT x, fl_index n)
{
    float acc[FL_STREAM_LANES] = {0};
    fl_index k = 0;
    for (; k + FL_STREAM_LANES <= n; k += FL_STREAM_LANES)
        for (int l = 0; l < FL_STREAM_LANES; l++) acc[l] += x[k + l];
    double s = 0.0;
    for (; k < n; k++) s += x[k];
    for (int l = 0; l < FL_STREAM_LANES; l++) s += acc[l];
    return s;
}

FL_BLOCK_FN void stream_write_block(float *FL_RESTRICT x, fl_index n, float value)
{
    /* a plain store loop (the compiler makes vector stores of it): the output of a kernel is written so; value is
     * a run-time argument, not a constant byte pattern, so the loop is not turned into a memset (whose
     * non-temporal stores would measure something the kernels do not do) */
    for (fl_index k = 0; k < n; k++) x[k] = value;
}

int FL_IMPL(fl_stream_read_f32)(fl_stream_args *a)
{
    const fl_index n_blocks = fl_n_blocks(a->n, FL_STREAM_BLOCK);
    fl_partials parts;
    if (!fl_partials_init(&parts, n_blocks)) return FL_ERR_NOMEM;
    const float *x = a->x;
    const fl_index n = a->n;
    double *p = parts.p;
    const int nt = fl_threads_for(a->n_threads, n, n_blocks);
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index k0 = b * FL_STREAM_BLOCK;
        const fl_index k1 = k0 + FL_STREAM_BLOCK < n ? k0 + FL_STREAM_BLOCK : n;
        p[2 * b] = stream_read_block(x + k0, k1 - k0);
        p[2 * b + 1] = 0.0;
    });
    double unused;
    fl_partials_sum(&parts, n_blocks, &a->sum, &unused);
    fl_partials_free(&parts);
    return FL_OK;
}

int FL_IMPL(fl_stream_write_f32)(fl_stream_args *a)
{
    const fl_index n_blocks = fl_n_blocks(a->n, FL_STREAM_BLOCK);
    float *x = a->out;
    const fl_index n = a->n;
    const float value = (float)a->value;
    const int nt = fl_threads_for(a->n_threads, n, n_blocks);
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index k0 = b * FL_STREAM_BLOCK;
        const fl_index k1 = k0 + FL_STREAM_BLOCK < n ? k0 + FL_STREAM_BLOCK : n;
        stream_write_block(x + k0, k1 - k0, value);
    });
    a->sum = 0.0;
    return FL_OK;
}

/* ---- the public entry points, in the scalar copy only ------------------------------------------------------
 * FL_LEVEL_IS(scalar) is 1 in the scalar copy and 0 in the others (FL_LEVEL_IS_avx2 is not defined: 0 in #if). */
#define FL_LEVEL_IS_scalar 1
#if FL_CAT(FL_LEVEL_IS, FL_LEVEL)

/* The other levels' copies are weak references: a build without them (not x86-64, or a compiler without the
 * AVX-512 flags) links, and the pointer is NULL; the scalar copy then runs. */
#if defined(__GNUC__) || defined(__clang__)
#define FL_STREAM_WEAK __attribute__((weak))
int fl_stream_read_f32_avx2(fl_stream_args *a) FL_STREAM_WEAK;
int fl_stream_read_f32_avx512(fl_stream_args *a) FL_STREAM_WEAK;
int fl_stream_write_f32_avx2(fl_stream_args *a) FL_STREAM_WEAK;
int fl_stream_write_f32_avx512(fl_stream_args *a) FL_STREAM_WEAK;
#define FL_STREAM_LEVEL(name, a)                                                          \
    do {                                                                                  \
        const char *lv = fl_simd_level();                                                 \
        if (strcmp(lv, "avx512") == 0 && name##_avx512 != NULL) return name##_avx512(a);  \
        if (strcmp(lv, "avx2") == 0 && name##_avx2 != NULL) return name##_avx2(a);        \
    } while (0)
#else
#define FL_STREAM_LEVEL(name, a) (void)0
#endif

int fl_stream_read_f32(fl_stream_args *a)
{
    FL_STREAM_LEVEL(fl_stream_read_f32, a);
    return fl_stream_read_f32_scalar(a);
}

int fl_stream_write_f32(fl_stream_args *a)
{
    FL_STREAM_LEVEL(fl_stream_write_f32, a);
    return fl_stream_write_f32_scalar(a);
}
#endif
