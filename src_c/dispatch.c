/* dispatch.c -- chooses the kernel table once (CPU features, or FASTLOSS_SIMD through fl_select_simd) and
 * defines the public entry points of fastloss.h, which forward to it; and the process-wide state of process.h
 * (default threads, fork, Ctrl-C), which must exist once. Compiled once, without SIMD flags. */
#if defined(__linux__)
#define _GNU_SOURCE /* sched_getcpu, sched_setaffinity and cpu_set_t (with what the two below give elsewhere) */
#endif
#if defined(__unix__) || defined(__APPLE__)
#define _XOPEN_SOURCE 700 /* sigaction with SA_ONSTACK, pthread_atfork, open/read */
#define _DEFAULT_SOURCE   /* mincore */
#define FL_POSIX 1
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <pthread.h>
#include <unistd.h>
#endif
#if defined(__linux__)
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#endif
#include <signal.h>
#include <string.h>
#include <time.h>
#include "fastloss.h"
#include "process.h"
#ifdef _OPENMP
#include <omp.h>
#endif

extern const fl_kernel_table fl_table_scalar;
#ifdef FL_HAVE_AVX2
extern const fl_kernel_table fl_table_avx2;
#endif
#ifdef FL_HAVE_AVX512
extern const fl_kernel_table fl_table_avx512;
#endif

static const fl_kernel_table *fl_active = &fl_table_scalar;

/* The table of a level if it was built and this CPU runs it, else NULL. Best first. */
static const fl_kernel_table *fl_table_for(const char *level)
{
#if defined(FL_HAVE_AVX2) || defined(FL_HAVE_AVX512)
    __builtin_cpu_init();
#endif
#ifdef FL_HAVE_AVX512
    if (strcmp(level, "avx512") == 0)
        return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
                   ? &fl_table_avx512 : NULL;
#endif
#ifdef FL_HAVE_AVX2
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

/* ---- threads (see process.h) --------------------------------------------------------------------------------
 * Plain ints: written by Python under the GIL, read by calls on any thread; a call that races a change of the
 * setting gets the old or the new count, and either gives the same bits. */
static volatile int fl_threads_override = 0, fl_threads_env = 0, fl_threads_cpus = 1, fl_omp_env_set = 0;
volatile int fl_fork_serial = 0;

void fl_set_thread_settings(int override_threads, int env_threads, int cpus, int omp_env_set)
{
    fl_threads_override = override_threads > 0 ? override_threads : 0;
    fl_threads_env = env_threads > 0 ? env_threads : 0;
    fl_threads_cpus = cpus > 0 ? cpus : 1;
    fl_omp_env_set = omp_env_set != 0;
}

int fl_default_threads(void)
{
    if (fl_fork_serial) return 1;
    if (fl_threads_override > 0) return fl_threads_override;
    if (fl_threads_env > 0) return fl_threads_env;
#ifdef _OPENMP
    /* the calling thread's limit: threadpoolctl's threadpool_limits calls omp_set_num_threads in this thread */
    const int omp = omp_get_max_threads();
    /* libgomp's own default is every CPU of the affinity mask, blind to a cgroup quota: cap it, as scikit-learn
     * does, unless OMP_NUM_THREADS asked for that many */
    if (fl_omp_env_set) return omp > 0 ? omp : 1;
    return omp < fl_threads_cpus ? (omp > 0 ? omp : 1) : fl_threads_cpus;
#else
    return 1;
#endif
}

/* ---- where the workers run (see process.h) ------------------------------------------------------------- */
#if defined(__linux__) && defined(_OPENMP)
typedef struct {
    int cpu;        /* the calling thread's CPU when the region began */
    cpu_set_t mask; /* the calling thread's affinity mask then */
} fl_team_place;
static _Thread_local fl_team_place fl_caller_place; /* the caller's, read by its workers during the region */
static _Thread_local fl_team_place fl_worker_place; /* a worker's: what its own mask was last set from */
static _Thread_local int fl_worker_placed = 0;
static int fl_bound_by_runtime = 0; /* OMP_PROC_BIND / OMP_PLACES / GOMP_CPU_AFFINITY / KMP_AFFINITY set */
#endif

const void *fl_team_begin(void)
{
#if defined(__linux__) && defined(_OPENMP)
    if (fl_bound_by_runtime) return NULL;
    fl_team_place *p = &fl_caller_place;
    p->cpu = sched_getcpu();
    if (p->cpu < 0 || p->cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof p->mask, &p->mask) != 0) return NULL;
    return p;
#else
    return NULL;
#endif
}

void fl_team_settle(const void *team)
{
#if defined(__linux__) && defined(_OPENMP)
    const fl_team_place *p = (const fl_team_place *)team;
    if (p == NULL || omp_get_thread_num() == 0) return;
    fl_team_place *w = &fl_worker_place;
    if (fl_worker_placed && w->cpu == p->cpu && CPU_EQUAL(&w->mask, &p->mask)) return; /* nothing new */
    *w = *p;
    fl_worker_placed = 1;
    cpu_set_t m = p->mask;
    CPU_CLR(p->cpu, &m);
    if (CPU_COUNT(&m) > 0) sched_setaffinity(0, sizeof m, &m); /* a hint: nothing to do if refused */
#else
    (void)team;
#endif
}

#ifdef FL_POSIX
static long long fl_team_end_ns = 0; /* CLOCK_MONOTONIC of the last call that wanted a team or region's end */
static long long fl_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
#endif

int fl_team_warm(void)
{
#ifdef FL_POSIX
    const long long now = fl_now_ns(), end = __atomic_exchange_n(&fl_team_end_ns, now, __ATOMIC_RELAXED);
    return end != 0 && now - end < FL_TEAM_WARM_NS;
#else
    return 1;
#endif
}

void fl_team_end(void)
{
#ifdef FL_POSIX
    __atomic_store_n(&fl_team_end_ns, fl_now_ns(), __ATOMIC_RELAXED);
#endif
}

/* ---- fork (see process.h) ------------------------------------------------------------------------------- */
#ifdef FL_POSIX
static volatile sig_atomic_t fl_armed = 0; /* the SIGINT handler below is installed (fl_interrupt_arm) */
static struct sigaction fl_saved_sigint;   /* the action it replaced, restored by disarm and in a child */

/* The threads of this process from /proc/self/status ("Threads:\t<n>"), or -1 where that cannot be read.
 * Called in the atfork prepare handler: only open/read/close on a stack buffer (no malloc, no stdio locks). */
static int fl_count_threads(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nThreads:");
    if (p == NULL) return -1;
    p += strlen("\nThreads:");
    while (*p == ' ' || *p == '\t') p++;
    int count = 0;
    for (; *p >= '0' && *p <= '9'; p++) count = count * 10 + (*p - '0');
    return count > 0 ? count : -1;
}

static int fl_threads_at_fork = -1;

static void fl_atfork_prepare(void)
{
#ifdef _OPENMP
    fl_threads_at_fork = fl_fork_serial ? -1 : fl_count_threads();
#endif
}

static void fl_atfork_child(void)
{
#ifdef _OPENMP
    /* one thread at the fork: no OpenMP pool existed (its workers outlive a parallel region), the child may
     * start one; else, or unknown, serial, and so are the children of this child (fl_fork_serial is inherited) */
    if (fl_threads_at_fork != 1) fl_fork_serial = 1;
#endif
    /* forked by another thread during an armed call: the child must not keep a handler whose call it never runs */
    if (fl_armed) {
        sigaction(SIGINT, &fl_saved_sigint, NULL);
        fl_armed = 0;
    }
}
#endif

void fl_process_init(void)
{
#ifdef FL_POSIX
    static int registered = 0; /* called at import, with the GIL: no race */
    if (!registered && pthread_atfork(fl_atfork_prepare, NULL, fl_atfork_child) == 0) registered = 1;
#endif
#if defined(__linux__) && defined(_OPENMP)
    /* the OpenMP runtime places its threads itself when asked to: leave them there */
    static const char *const binding[] = {"OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY"};
    fl_bound_by_runtime = 0;
    for (size_t k = 0; k < sizeof binding / sizeof binding[0]; k++) {
        const char *v = getenv(binding[k]);
        if (v != NULL && v[0] != '\0' && !(k == 0 && (strcmp(v, "false") == 0 || strcmp(v, "FALSE") == 0)))
            fl_bound_by_runtime = 1;
    }
#endif
}

/* ---- Ctrl-C (see process.h) ----------------------------------------------------------------------------- */
static volatile sig_atomic_t fl_sigint_seen = 0;
static const volatile sig_atomic_t fl_never = 0;
/* The calling thread's flag: &fl_sigint_seen in the main thread during an armed call, else NULL (fl_never). */
static _Thread_local const volatile sig_atomic_t *fl_thread_stop = NULL;

const volatile sig_atomic_t *fl_stop_flag(void)
{
    const volatile sig_atomic_t *p = fl_thread_stop;
    return p != NULL ? p : &fl_never;
}

/* The middle page: an allocator's header may have touched the first (glibc writes its chunk header just before
 * the data of a large block). A new mapping's pages, huge pages too, stay non-resident until first touched. */
int fl_pages_untouched(const void *p, long nbytes)
{
#if defined(__linux__)
    const long page = sysconf(_SC_PAGESIZE);
    if (p == NULL || nbytes <= 0 || page <= 0) return 0;
    const uintptr_t mid = ((uintptr_t)p + (uintptr_t)nbytes / 2) & ~((uintptr_t)page - 1);
    unsigned char v = 1;
    return mincore((void *)mid, (size_t)page, &v) == 0 && !(v & 1);
#else
    (void)p, (void)nbytes;
    return 0;
#endif
}

int fl_small_pages(void *p, long nbytes)
{
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p == NULL || nbytes <= 0) return 0;
    const uintptr_t first = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + (uintptr_t)nbytes) & ~(huge - 1);
    return end > first && madvise((void *)first, (size_t)(end - first), MADV_NOHUGEPAGE) == 0;
#else
    (void)p, (void)nbytes;
    return 0;
#endif
}

#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL and the watch stops */
#endif

typedef struct {
    uintptr_t base, nbytes;        /* the output */
    uintptr_t first, n_huge;       /* its whole huge pages */
    int n_slow, small;             /* pages found slow; turned to small pages (read and set by any thread) */
} fl_watched;

struct fl_fresh_watch {
    int n, taken;
    long slow_ns;
    fl_watched out[FL_FRESH_MAX_OUTPUTS];
};

/* The thread's CPU time, not the wall clock: a vCPU stalled while its host faults a reported page back in counts
 * (5-6 ms a huge page, seen from here), a thread preempted by another of the process (a peer's OpenMP workers
 * spinning on the other vCPU) does not. */
#define FL_FRESH_CLOCK CLOCK_THREAD_CPUTIME_ID
static _Thread_local fl_fresh_watch fl_watch; /* the calling thread's; its workers reach it through fl_fresh_take */
static int fl_populate_fails = 0;             /* MADV_POPULATE_WRITE unknown to this kernel */

int fl_fresh_watch_output(void *p, long nbytes, long slow_ns)
{
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (p == NULL || nbytes <= 0 || page == 0 || page > huge || fl_watch.n == FL_FRESH_MAX_OUTPUTS ||
        __atomic_load_n(&fl_populate_fails, __ATOMIC_RELAXED))
        return 0;
    const uintptr_t first = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = (uintptr_t)p + (uintptr_t)nbytes;
    if (end < first || (end - first) / huge < FL_FRESH_MIN_HUGE) return 0;
    unsigned char resident = 1;
    if (mincore((void *)first, (size_t)page, &resident) != 0 || (resident & 1)) return 0; /* not new memory */
    if (fl_watch.n == 0) fl_watch.slow_ns = slow_ns < 0 ? FL_FRESH_SLOW_NS : slow_ns;
    fl_watched *o = &fl_watch.out[fl_watch.n++];
    o->base = (uintptr_t)p, o->nbytes = (uintptr_t)nbytes, o->first = first, o->n_huge = (end - first) / huge;
    o->n_slow = 0, o->small = 0;
    fl_watch.taken = 0;
    return 1;
#else
    (void)p, (void)nbytes, (void)slow_ns;
    return 0;
#endif
}

void fl_fresh_clear(void) { fl_watch.n = 0; }

fl_fresh_watch *fl_fresh_take(void)
{
    if (fl_watch.n == 0 || fl_watch.taken) return NULL;
    fl_watch.taken = 1;
    return &fl_watch;
}

void fl_fresh_block(fl_fresh_watch *w, size_t *done, long long b, long long n_blocks)
{
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20, nb = (uintptr_t)n_blocks, ub = (uintptr_t)b;
    for (int k = 0; k < w->n; k++) {
        fl_watched *o = &w->out[k];
        if (__atomic_load_n(&o->small, __ATOMIC_RELAXED)) continue;
        /* the block's share of the output, [lo, hi): (nbytes / nb) * b + (nbytes % nb) * b / nb, no overflow */
        const uintptr_t q = o->nbytes / nb, r = o->nbytes % nb;
        const uintptr_t lo = o->base + q * ub + r * ub / nb, hi = o->base + q * (ub + 1) + r * (ub + 1) / nb;
        if (hi <= o->first) continue;
        uintptr_t p0 = lo < o->first ? 0 : (lo - o->first) / huge, p1 = (hi - 1 - o->first) / huge + 1;
        p1 = p1 < o->n_huge ? p1 : o->n_huge;
        p0 = p0 > done[k] ? p0 : done[k];
        for (uintptr_t pg = p0; pg < p1; pg++) {
            struct timespec t0, t1;
            clock_gettime(FL_FRESH_CLOCK, &t0);
            if (madvise((void *)(o->first + pg * huge), (size_t)huge, MADV_POPULATE_WRITE) != 0) {
                if (errno == EINVAL) __atomic_store_n(&fl_populate_fails, 1, __ATOMIC_RELAXED);
                __atomic_store_n(&o->small, 1, __ATOMIC_RELAXED); /* stop watching it: the stores fault it */
                break;
            }
            clock_gettime(FL_FRESH_CLOCK, &t1);
            done[k] = pg + 1;
            if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) >= w->slow_ns &&
                __atomic_add_fetch(&o->n_slow, 1, __ATOMIC_RELAXED) == FL_FRESH_SLOW_PAGES) {
                madvise((void *)o->first, (size_t)(o->n_huge * huge), MADV_NOHUGEPAGE);
                __atomic_store_n(&o->small, 1, __ATOMIC_RELAXED);
                break;
            }
        }
    }
#else
    (void)w, (void)done, (void)b, (void)n_blocks;
#endif
}

#ifdef FL_POSIX
/* Async-signal-safe: a store to a sig_atomic_t, then Python's own handler (itself a signal handler), which
 * notes the signal so that KeyboardInterrupt is raised when the call is back in Python. Runs on whichever
 * thread the kernel delivers the signal to. */
static void fl_on_sigint(int sig, siginfo_t *info, void *context)
{
    fl_sigint_seen = 1;
    if (fl_saved_sigint.sa_flags & SA_SIGINFO) {
        if (fl_saved_sigint.sa_sigaction != NULL) fl_saved_sigint.sa_sigaction(sig, info, context);
    } else if (fl_saved_sigint.sa_handler != SIG_DFL && fl_saved_sigint.sa_handler != SIG_IGN) {
        fl_saved_sigint.sa_handler(sig);
    }
}
#endif

int fl_interrupt_arm(void)
{
#ifdef FL_POSIX
    /* the old action is read first and ours installed second, so the handler never sees a half-written copy */
    if (fl_armed || sigaction(SIGINT, NULL, &fl_saved_sigint) != 0) return 0;
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = fl_on_sigint;
    act.sa_mask = fl_saved_sigint.sa_mask;
    act.sa_flags = SA_SIGINFO | (fl_saved_sigint.sa_flags & (SA_ONSTACK | SA_RESTART));
    fl_sigint_seen = 0;
    if (sigaction(SIGINT, &act, NULL) != 0) return 0;
    fl_armed = 1;
    fl_thread_stop = &fl_sigint_seen;
    return 1;
#else
    return 0;
#endif
}

int fl_interrupt_disarm(void)
{
#ifdef FL_POSIX
    fl_thread_stop = NULL;
    if (fl_armed) {
        sigaction(SIGINT, &fl_saved_sigint, NULL);
        fl_armed = 0;
    }
    const int seen = fl_sigint_seen;
    fl_sigint_seen = 0;
    return seen;
#else
    return 0;
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
