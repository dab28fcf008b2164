#!/usr/bin/env bash
# Installs the wheel tools/build_wheel.sh made into a fresh virtual environment whose PATH has no C compiler,
# then runs the main job (python -m fastloss) and the test suite against the installed package.
#   tools/test_wheel.sh [WHEEL] [pytest arguments...]    (default wheel: wheelhouse/fastloss-*.whl)
# The tests run from a copy of tests/ (and the fuzz harness they replay) in a directory without ./fastloss, so
# `import fastloss` can only find the installed wheel; the script checks that it did.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
wheel="${1:-$(ls "$repo"/wheelhouse/fastloss-*.whl)}"
[ $# -gt 0 ] && shift
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
work="$(mktemp -d /tmp/fastloss-wheel.XXXXXX)"
python -m venv "$work/venv"

# PATH: the venv's bin and a directory of links to the few programs needed here and by the tests' subprocesses;
# no gcc, cc, clang or c++ (pip would need one to build fastloss from source, and must not get the chance).
mkdir "$work/bin"
for tool in sh bash env cat ls cp mkdir rm uname; do
    ln -s "$(command -v "$tool")" "$work/bin/$tool"
done
export PATH="$work/venv/bin:$work/bin"
unset PYTHONPATH
python - <<'PY'
import shutil, sys
found = {c: shutil.which(c) for c in ("gcc", "cc", "clang", "c++", "g++", "x86_64-linux-gnu-gcc")}
assert not any(found.values()), f"a C compiler is on PATH: {found}"
print(f"test_wheel: no C compiler on PATH; {sys.executable}")
PY

# --only-binary: no package may be compiled (there is nothing to compile with); the wheel file is named, so
# pip can only take fastloss from it
python -m pip install --quiet --upgrade pip
python -m pip install --quiet --only-binary=:all: "$wheel[test]"

cd "$work"
mkdir -p suite/tools
cp -r "$repo/tests" suite/
cp "$repo/tools/fuzz_fastloss.py" suite/tools/
cp "$repo/pyproject.toml" suite/   # pytest's settings (testpaths, file patterns); nothing else of it is used
cd suite
python -m fastloss
# pytest runs in a process that has imported fastloss first and checked where from: the tests then get that
# module (sys.modules), whatever pytest adds to sys.path. (A file, not stdin: Dask's worker processes re-import
# the main module by its path.) -p no:cacheprovider: nothing written next to the copied tests.
cat > "$work/run_pytest.py" <<'PY'
import os
import sys

import fastloss
import pytest

if __name__ == "__main__":
    where = os.path.dirname(fastloss.__file__)
    if not where.startswith(sys.argv[1]):
        sys.exit(f"test_wheel: fastloss imported from {where}, not from the installed wheel")
    print(f"test_wheel: the tests run on fastloss {fastloss.__version__} from {where}", flush=True)
    sys.exit(pytest.main(sys.argv[2:]))
PY
python "$work/run_pytest.py" "$work/venv/" -q -p no:cacheprovider "$@"
rm -rf "$work"
echo "test_wheel: passed"
