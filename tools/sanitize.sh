#!/usr/bin/env bash
# Builds fastloss with AddressSanitizer + UndefinedBehaviorSanitizer (FASTLOSS_SANITIZE=1, see setup.py) in a
# copy of the tracked sources (the in-place build of the checkout is left alone) and runs pytest on it.
#   tools/sanitize.sh                    the whole test suite
#   tools/sanitize.sh tests/test_errors.py -x   any pytest arguments (test files, -k, -x, ...)
# FUZZ_SECONDS=N also runs the atheris fuzzer (tools/fuzz_fastloss.py) for N seconds on the sanitized build.
# Needs gcc (libasan, libubsan). Python itself is not instrumented, so libasan is preloaded; leak detection is
# off because CPython keeps objects alive until exit by design.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${SANITIZE_DIR:-$(mktemp -d /tmp/fastloss-asan.XXXXXX)}"
mkdir -p "$work"
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$work" 2>/dev/null) || cp -r "$repo"/. "$work"/
rm -f "$work"/fastloss/_kernels*.so
# the build needs Cython and setuptools (pip install -e builds in an isolated environment, without them here);
# setuptools >= 77 as pyproject.toml's build requirements say (a venv's bundled one cannot read its license field)
python -c "import Cython, setuptools; assert int(setuptools.__version__.split('.')[0]) >= 77" 2>/dev/null \
    || python -m pip install --quiet "Cython>=3.0" "setuptools>=77"
# only the scalar level and this CPU's best (FASTLOSS_LEVELS, setup.py): the tests run the level this machine
# chooses, and an instrumented build of a level it cannot run would be minutes of compiling for nothing
if [ -z "${FASTLOSS_LEVELS:-}" ] && [ -r /proc/cpuinfo ]; then
    case "$(grep -m1 '^flags' /proc/cpuinfo)" in
    *avx512bw*avx512vl* | *avx512vl*avx512bw*) FASTLOSS_LEVELS=avx512 ;;
    *avx2*) FASTLOSS_LEVELS=avx2 ;;
    *) FASTLOSS_LEVELS=scalar ;;
    esac
    export FASTLOSS_LEVELS
fi
echo "sanitize: building in $work (levels: scalar ${FASTLOSS_LEVELS:-all})"
(cd "$work" && FASTLOSS_SANITIZE=1 python setup.py build_ext --inplace >build.log 2>&1) \
    || { tail -40 "$work/build.log"; exit 1; }
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
# reports also go to files: pytest captures fd 2, and a process that a sanitizer stops loses what it captured
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:log_path=$work/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/ubsan"
# (|| true: with pipefail, a cat that finds no report would end the script before it says why)
report() { { cat "$work"/asan.* "$work"/ubsan.* 2>/dev/null || true; } | head -60; echo "sanitize: FAILED ($work)"; exit 1; }
export PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}"
cd "$work"
python -c "import fastloss, sys; assert fastloss.__file__.startswith('$work'), fastloss.__file__"
python -m pytest -q -p no:cacheprovider "$@" || report  # no paths given: testpaths (tests/)
if [ "${FUZZ_SECONDS:-0}" -gt 0 ]; then
    python tools/fuzz_fastloss.py -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$work/" || report
fi
if ls "$work"/asan.* "$work"/ubsan.* >/dev/null 2>&1; then report; fi
echo "sanitize: clean"
