#!/usr/bin/env bash
# Builds the mbx Python binding (CPU, Release) and runs the full comparison
# of tests/bench/compare.py (mbx vs torchvision vs the memory floor, issue 5),
# writing tests/bench/results/<date>.json and <date>.txt.
#
#   tests/bench/run_compare.sh            # full run (~2-4 min on 2 cores)
#   tests/bench/run_compare.sh --quick    # CI smoke: tiny sizes, 1 run
#   BUILD_DIR=... PYTHON=... RESULT_NAME=... tests/bench/run_compare.sh [compare.py args]
#
# Needs: cmake, ninja, a C++ toolchain, oneTBB, SWIG, numpy; torch 1.13 and
# torchvision 0.14 (Debian python3-torch / python3-torchvision) for the
# baselines. Extra arguments are passed on to compare.py.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build-bench}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then
    PYTHON="$REPO/.venv/bin/python"
  else
    PYTHON="$(command -v python3)"
  fi
fi

cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DMBX_ENABLE_CUDA=OFF -DMBX_ENABLE_PYTHON=ON -DMBX_BUILD_BENCHMARKS=ON \
  -DPython3_EXECUTABLE="$PYTHON" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"

export PYTHONPATH="$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}"
if [[ " $* " == *" --quick "* ]]; then
  exec "$PYTHON" "$HERE/compare.py" --build "$BUILD_DIR" "$@"
fi

NAME="${RESULT_NAME:-$(date +%Y-%m-%d)}"
OUT="$HERE/results"
mkdir -p "$OUT"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
"$PYTHON" "$HERE/compare.py" --build "$BUILD_DIR" --json "$OUT/$NAME.json" \
  --txt "$OUT/$NAME.txt" "$@" || rc=$?
echo "results: $OUT/$NAME.json $OUT/$NAME.txt (exit $rc: non-zero if a correctness check failed)"
exit $rc
