/* process.h -- fastloss inside someone else's process: the default thread count, fork, Ctrl-C.
 * Defined in dispatch.c (compiled once); read by the block driver of common.h and set by the Cython bridge.
 *
 *   threads  n_threads <= 0 in an argument struct means "the default": fl_default_threads(), worked out when a
 *            call is large enough to start threads (fl_threads_for), so that small calls pay nothing.
 *   fork     GNU OpenMP's thread pool does not survive fork(): a child's first parallel region waits forever for
 *            the parent's workers. A pthread_atfork child handler sets fl_fork_serial when the parent had more
 *            than one thread at the fork (so possibly an OpenMP pool, ours or that of another library on the same
 *            libgomp, e.g. LightGBM's); FL_FOR_BLOCKS then runs serial in that child and its descendants.
 *   workers  the CPU a woken OpenMP worker runs on. After an idle gap, Linux (seen in a 2-vCPU Firecracker VM)
 *            queued the woken worker on the calling thread's own CPU, where it waited until the caller blocked:
 *            a 2-thread call after 30 ms of idle took 5.7 ms instead of 0.2 (nll_loss 4,096 x 32,000) and an
 *            empty parallel region 5.2 ms, as long as GNU OpenMP's spin before the end barrier sleeps (both
 *            threads on one CPU; the same in a plain pthread pool). So each worker, after its blocks, sets its
 *            own affinity to the caller's mask without the caller's CPU (only when they changed: a system call
 *            only then); the next call's wake-up puts it on another CPU. Not when the OpenMP runtime binds
 *            threads itself (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY, KMP_AFFINITY set).
 *   Ctrl-C   the bridge arms a C SIGINT handler around a long call from the main thread (fl_interrupt_arm); it
 *            sets a flag and chains to Python's handler. FL_FOR_BLOCKS reads the calling thread's flag
 *            (fl_stop_flag) before each block and skips the remaining blocks once it is set; the bridge then
 *            raises KeyboardInterrupt (fl_interrupt_disarm says whether it fired). */
#ifndef FASTLOSS_PROCESS_H
#define FASTLOSS_PROCESS_H

#include <signal.h> /* sig_atomic_t */
#include <stddef.h> /* size_t */

/* 1 in a child forked from a process that had more than one thread (and in its descendants): run serial. */
extern volatile int fl_fork_serial;

/* The number of threads of n_threads=None, in this order: fl_set_threads_override(k) (fl.set_num_threads),
 * FASTLOSS_NUM_THREADS, the OpenMP limit in force in the calling thread (omp_get_max_threads(): OMP_NUM_THREADS,
 * omp_set_num_threads as threadpoolctl calls it), capped by the CPUs this process may use unless
 * OMP_NUM_THREADS was set; 1 in a serial child (fl_fork_serial) and without OpenMP. */
int fl_default_threads(void);
/* Settings from Python (0: not set): the override, FASTLOSS_NUM_THREADS, the usable CPUs (affinity and cgroup
 * quota), whether OMP_NUM_THREADS was set. */
void fl_set_thread_settings(int override_threads, int env_threads, int cpus, int omp_env_set);
/* Registers the pthread_atfork handlers (once; called at import). */
void fl_process_init(void);

/* Workers' placement (Linux with OpenMP; no-ops elsewhere): fl_team_begin, by the calling thread before a
 * parallel region, returns its CPU and mask (NULL: leave the workers alone); fl_team_settle(team), by every thread
 * of the region after its blocks, moves a worker (not thread 0) off that CPU. */
const void *fl_team_begin(void);
void fl_team_settle(const void *team);
/* Whether the workers are likely awake, or worth waking: less than FL_TEAM_WARM_NS ago in this process a parallel
 * region ended (fl_team_end, by the calling thread after it) or a call asked fl_team_warm (a call whose work was
 * worth a warm team: it notes itself, so in a loop of such calls the second starts a team and the rest find it
 * warm, while calls apart stay on their thread). GNU OpenMP's workers spin ~3-4 ms after a region before they
 * sleep (an empty 2-thread region after 3 ms idle: 2 us; after 4 ms: 43 us). Without POSIX clocks: always 1. */
#define FL_TEAM_WARM_NS 2000000LL
int fl_team_warm(void);
void fl_team_end(void);

/* The stop flag of the calling thread: nonzero once a SIGINT arrived during this thread's armed call. Never
 * set for other threads (a flag that stays 0). Read it before the parallel region, test it in each block. */
const volatile sig_atomic_t *fl_stop_flag(void);
/* Main thread only, with the GIL: installs the C SIGINT handler (chaining to the one in place) and points
 * this thread's stop flag at it. Returns 1 if armed, 0 if not (no POSIX signals, or sigaction failed). */
int fl_interrupt_arm(void);
/* Restores the SIGINT handler armed over; returns 1 if a SIGINT arrived meanwhile. */
int fl_interrupt_disarm(void);

/* Whether the nbytes of an output at p are memory the OS has not handed over yet (its middle page not resident,
 * mincore(2); 0 where that cannot be told): a new np.empty / torch.empty array, whose pages the OS zeroes as
 * they are first written. The large outputs' kernels store into such memory with plain stores, as their zeroed
 * lines are in cache; non-temporal stores only into memory already in use (a held grad_out). */
int fl_pages_untouched(const void *p, long nbytes);

/* Turns the whole 2 MiB extents of [p, p + nbytes) to 4 KiB pages (MADV_NOHUGEPAGE) before anything is written
 * there: for a new zeroed output of which the kernel writes one or two entries a row (nll_loss's and
 * crammer_singer's gradients). With long rows most small pages are then never touched, where a huge page is
 * zeroed whole at its first store: 4,096 x 32,000 float32 nll_loss_and_grad 31 -> 3.5 ms (huge pages that are
 * quick; 0.2-0.7 s in runs where they came from blocks the host took back). Returns 1 where it advised, else 0. */
int fl_small_pages(void *p, long nbytes);

/* A new large output's pages, watched while the kernel writes it. NumPy asks for transparent huge pages for its
 * arrays of 4 MiB and more (madvise): a 2 MiB page costs the OS ~0.23 ms to zero here, half the CPU time of 512
 * small ones. But on a VM whose balloon takes back free memory (virtio free page reporting, in 2 MiB blocks) a
 * huge page from a block already reported costs ~5 ms (the host faults it back in), measured here: 22x. The guest
 * hands out its unreported blocks first, so within one new array the pages turn slow at some point and stay slow
 * (a 524 MB array after 3 s idle: after 1, 74 or 170 of its 250 pages). Small pages come from the guest's own
 * fragments, which are never reported (~0.9 us a page on two threads, ~0.4 ms a 2 MiB extent).
 * So the bridge may register the output (fl_fresh_watch_output, before the call, on the calling thread; at most
 * FL_FRESH_MAX_OUTPUTS of them), and the kernel's first block loop (FL_FOR_BLOCKS takes the watch: fl_fresh_take)
 * faults the huge pages of each block's share of the output (block b of n: the bytes [b/n, (b+1)/n) of it, which
 * is where the row and element kernels write it) just before the block runs, timed (MADV_POPULATE_WRITE: a write
 * fault that changes no byte, so it may race the kernel's stores on a page another thread has begun). Once
 * FL_FRESH_SLOW_PAGES pages of an output have taken FL_FRESH_SLOW_NS or longer, that output is turned to 4 KiB
 * pages (MADV_NOHUGEPAGE: the pages already there stay huge) and the kernel's stores fault the rest in: not at
 * the first slow page, as a lone slow one turns up in good runs too and small pages cost ~0.2 ms more a 2 MiB
 * extent. The page is faulted where the kernel would have faulted it, just before its stores, so its zeroed
 * lines are still in cache for them: no pass of its own (the handover this replaced zeroed every page before the
 * call, to memory: cross_entropy_grad_hess 65,536 x 1,000 in the bench 89 -> 161 ms). Only memory not yet handed
 * over (mincore) of an output of at least FL_FRESH_MIN_HUGE huge pages; slow_ns < 0 means FL_FRESH_SLOW_NS.
 * fl_fresh_watch_output returns 1 where it watches the output; fl_fresh_clear (the bridge, after the call) drops
 * the watch, taken or not. The Python layer registers outputs only when asked (FASTLOSS_FRESH_PAGES=1) on such a
 * VM: in the bench's process, where peers allocate and free between our calls, a call's huge pages were mostly
 * all quick or all slow, and with the switch to small pages on the median call got slower, not faster
 * (cross_entropy_grad_hess 65,536 x 1,000: 88-90 ms without the watch, 169-180 with it, 111-210 switching only
 * after 16 slow pages), where in a process of its own after 3 s pauses it bounded the slow calls (4,096 x 32,000
 * cross_entropy_and_grad 562 -> 121 ms). */
#define FL_FRESH_MIN_HUGE 8
#define FL_FRESH_SLOW_NS 1000000
#define FL_FRESH_SLOW_PAGES 3
#define FL_FRESH_MAX_OUTPUTS 4
typedef struct fl_fresh_watch fl_fresh_watch;
int fl_fresh_watch_output(void *p, long nbytes, long slow_ns);
void fl_fresh_clear(void);
fl_fresh_watch *fl_fresh_take(void);
/* by the thread that runs block b of n_blocks: done[k] is the first huge page of output k it has not faulted
 * (zeros before its first block; the guided schedule hands a thread its blocks in increasing order) */
void fl_fresh_block(fl_fresh_watch *w, size_t *done, long long b, long long n_blocks);

#endif
