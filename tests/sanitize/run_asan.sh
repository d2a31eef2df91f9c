#!/bin/sh
# ASan + UBSan build of the library and every C/C++ test (separate build
# dir), then the whole ctest suite and the golden runner on every data set.
#   tests/sanitize/run_asan.sh [BUILD_DIR]      (JOBS=2 by default)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-asan}
cmake -S "$src" -B "$build" -G Ninja -DMBX_ENABLE_SANITIZERS=ON -DMBX_ENABLE_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${JOBS:-2}"
# detect_leaks: LeakSanitizer on; halt_on_error: first report fails the run.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$build" && ctest -j"${JOBS:-2}" --output-on-failure)
for d in "$src"/tests/data/*/; do
  out=$("$build/tests/golden/mbx_golden" --path all "$d") || { echo "$out"; exit 1; }
  echo "$out" | tail -1
done
echo "ASan+UBSan: all tests and golden sets passed"
