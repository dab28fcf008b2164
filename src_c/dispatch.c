/* dispatch.c -- chooses the kernel table once (CPU features, or FASTLOSS_SIMD through fl_select_simd) and
 * defines the public entry points of fastloss.h, which forward to it. Compiled once, without SIMD flags. */
#include <string.h>
#include "fastloss.h"
#ifdef _OPENMP
#include <omp.h>
#endif

extern const fl_kernel_table fl_table_scalar;
#ifdef FL_HAVE_X86_LEVELS
extern const fl_kernel_table fl_table_avx2;
extern const fl_kernel_table fl_table_avx512;
#endif

static const fl_kernel_table *fl_active = &fl_table_scalar;

/* The table of a level if it was built and this CPU runs it, else NULL. Best first. */
static const fl_kernel_table *fl_table_for(const char *level)
{
#ifdef FL_HAVE_X86_LEVELS
    __builtin_cpu_init();
    if (strcmp(level, "avx512") == 0)
        return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
                   ? &fl_table_avx512 : NULL;
    /* F16C: the conversion of float16 data (every CPU with AVX2 has it) */
    if (strcmp(level, "avx2") == 0)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
                   ? &fl_table_avx2 : NULL;
#endif
    if (strcmp(level, "scalar") == 0) return &fl_table_scalar;
    return NULL;
}

int fl_simd_available(const char *level) { return fl_table_for(level) != NULL; }

int fl_select_simd(const char *level)
{
    static const char *const best_first[] = {"avx512", "avx2", "scalar"};
    const fl_kernel_table *t = NULL;
    if (level == NULL || level[0] == '\0') {
        for (size_t k = 0; k < sizeof best_first / sizeof best_first[0] && t == NULL; k++)
            t = fl_table_for(best_first[k]);
    } else {
        t = fl_table_for(level);
    }
    if (t == NULL) return -1;
    fl_active = t;
    return 0;
}

const char *fl_simd_level(void) { return fl_active->level; }

int fl_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fl_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

const char *fl_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

#define FL_FORWARD(name, args) int name(args *a) { return fl_active->name(a); }
FL_KERNEL_LIST(FL_FORWARD)
