#!/usr/bin/env bash
# valgrind memcheck on a short run: every public function once on small inputs, error paths included (the fuzz
# harness's cases, tools/fuzz_fastloss.py run_one, on 300 random byte strings, plus one valid call of each).
# CPython's own allocator noise is avoided with PYTHONMALLOC=malloc; the run fails only on errors whose stack
# mentions fastloss's code (_kernels, fl_* kernels, src_c).  Usage: tools/valgrind.sh (on the in-place build).
set -euo pipefail
cd "$(dirname "$0")/.."
log="${VALGRIND_LOG:-/tmp/fastloss-valgrind.log}"
PYTHONMALLOC=malloc PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1 \
valgrind --tool=memcheck --error-limit=no --num-callers=30 --log-file="$log" "$(python -c "import sys; print(sys.executable)")" - <<'PY'
import importlib.util
import random
spec = importlib.util.spec_from_file_location("fuzz", "tools/fuzz_fastloss.py")
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)
for i in range(len(fuzz.FUNCTIONS)):
    fuzz.run_one(bytes([i]))
rng = random.Random(5)  # not NumPy's Generator: valgrind mistakes its output for uninitialised memory
for _ in range(300):
    fuzz.run_one(rng.randbytes(rng.randrange(300)))
print("valgrind run: done")
PY
# an error block starts at "Invalid read/write", "uninitialised", "Mismatched free" ... and ends at a blank line
ours=$(awk '/==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)/{blk=$0; keep=1; next}
            keep && /==[0-9]+== *$/{ if (blk ~ /_kernels|fl_[a-z_0-9]+|src_c\//) print blk "\n"; keep=0; next}
            keep{blk=blk "\n" $0}' "$log")
if [ -n "$ours" ]; then
    echo "$ours" | head -80
    echo "valgrind: errors in fastloss's code (full log: $log)"
    exit 1
fi
echo "valgrind: no invalid reads/writes in fastloss's code ($(grep -c 'Invalid' "$log" || true) in Python itself; log: $log)"
