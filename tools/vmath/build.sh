#!/bin/sh
# Builds and runs the checker for the three flag sets, and the vectorisation report.
# Usage: ./build.sh [quick]
set -e
cd "$(dirname "$0")"
CF="-std=c11 -O3 -fno-math-errno -fno-trapping-math -Wall -Wextra -fopenmp -I../../src_c"  # the library's flags
F0=""
F1="-mavx2 -mfma"
F2="-mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -mavx2"
i=0
for fl in "$F0" "$F1" "$F2"; do
  gcc $CF $fl check_vmath.c -o check_$i -lm
  echo "=== vectorisation report, flags: '${fl:-<sse2 baseline>}'"
  gcc $CF $fl -c vec_test.c -o /dev/null -fopt-info-vec-all 2>&1 | grep -E "^vec_test.c:[0-9]+:[0-9]+: (optimized: loop vectorized|missed: couldn.t vectorize loop)|vmath.h:[0-9]+:[0-9]+: optimized: loop vectorized" | sort -u || true
  i=$((i+1))
done
i=0
for fl in "$F0" "$F1" "$F2"; do
  echo "=== check, flags: '${fl:-<sse2 baseline>}'"
  ./check_$i $1
  i=$((i+1))
done
