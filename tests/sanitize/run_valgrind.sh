#!/bin/sh
# valgrind memcheck of the golden runner over tests/data/golden (plain
# Release build): zero errors and zero definite/indirect leaks, else exit 1.
#   tests/sanitize/run_valgrind.sh [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build-rel}
if [ ! -x "$build/tests/golden/mbx_golden" ]; then
  cmake -S "$src" -B "$build" -G Ninja -DMBX_ENABLE_CUDA=OFF >/dev/null
  cmake --build "$build" -j"${JOBS:-2}" --target mbx_golden
fi
# --threads 2: the oneTBB pool is exercised but stays small under valgrind.
# tbb.supp: oneTBB's worker threads and market singleton are released
# asynchronously at exit ("possibly lost" only; see the file).
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --suppressions="$here/tbb.supp" --quiet \
  "$build/tests/golden/mbx_golden" --path all --threads 2 "$src/tests/data/golden"
echo "valgrind: 0 errors, 0 definite/indirect leaks"
