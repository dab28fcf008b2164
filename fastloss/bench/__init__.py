"""python -m fastloss bench [--quick] [--only SUBSTR] [--repeat N] [--threads N] [--json FILE] [--plot FILE.png]
python -m fastloss bench --sweep [--quick] [--dtype float32|float64|both] [--only NAME] [--json FILE]

The benchmark report of issues 5, 12, 13, 14 and 16: every workload of their goal tables, timed for fastloss, its
NumPy baseline (fastloss.reference) and every installed peer (torch, JAX, scikit-learn, SciPy) with the same
semantics, on the same arrays, in the same process. Per workload: median time, ratio (impl time / fastloss time:
> 1 means fastloss is faster, < 1 means it is slower), the multiple of the workload's floor (its bytes read and
written at the memory bandwidth measured in the same run), whether each result agrees with fastloss's, and
whether each goal is met. The report names the CPU (vendor, model, family/model) and the SIMD level in use.
`--sweep` times every public function at three shapes and lists those short of the goal (fastloss.bench.sweep).

None of the peers is a dependency: each is imported lazily, and a missing peer is skipped. A fastloss function
(or NumPy baseline) missing from this build is reported as "not in this build" and its peers still run.

Modules:
  workloads  what is timed: inputs, the implementations (fastloss and the peers' forms), bytes read and written,
             the goals
  timing     interleaved rounds (the scheme: see its docstring), the bandwidth measurement and the floors
  peers      importing and configuring torch, JAX, scikit-learn, SciPy (threads) and fastloss.torch
  run        running and judging a workload; the command line
  report     the machine, the tables, the goals summary, JSON
  sweep      --sweep: every public function against the fastest peer form and the floor
  plot       --plot: throughput over input sizes
"""
from .peers import DEFAULT_THREADS, Peers, Skip, configure_threads
from .run import judge_goal, main, rel_error, run_workload, to_numpy
from .timing import PAUSE_S, floor_seconds, measure, measure_bandwidth, measure_interleaved
from .workloads import KINDS, TOLERANCE, WORKLOADS, Inputs, Workload, input_bytes, output_bytes

__all__ = ["DEFAULT_THREADS", "Peers", "Skip", "configure_threads", "judge_goal", "main", "rel_error",
           "run_workload", "to_numpy", "PAUSE_S", "floor_seconds", "measure", "measure_bandwidth",
           "measure_interleaved", "KINDS", "TOLERANCE", "WORKLOADS", "Inputs", "Workload", "input_bytes",
           "output_bytes"]
