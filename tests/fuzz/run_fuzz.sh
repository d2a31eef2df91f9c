#!/bin/sh
# Builds the libFuzzer targets with clang (separate build dir) and runs each
# for SECONDS (default 60) on one core, on the committed seeds plus a working
# corpus in the build tree. Prints the executions per target.
#   tests/fuzz/run_fuzz.sh [SECONDS_API] [SECONDS_DIFF] [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
t_api=${1:-60}
t_diff=${2:-$t_api}
build=${3:-$src/build-fuzz}
CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S "$src" -B "$build" -G Ninja \
  -DMBX_ENABLE_CUDA=OFF -DMBX_ENABLE_FUZZERS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target mbx_fuzz_api mbx_fuzz_diff
status=0
for t in api diff; do
  eval secs=\$t_$t
  work="$build/tests/fuzz/work_corpus_$t"; art="$build/tests/fuzz/artifacts_$t"
  mkdir -p "$work" "$art"
  log="$build/tests/fuzz/fuzz_$t.log"
  echo "== mbx_fuzz_$t for ${secs}s (log $log)"
  if "$build/tests/fuzz/mbx_fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$art/" "$work" "$here/corpus/$t" >"$log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done" "$log" || true
  else
    status=1
    echo "FAILED: see $log and $art"; tail -30 "$log"
  fi
done
exit $status
