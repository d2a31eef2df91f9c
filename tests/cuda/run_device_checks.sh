#!/usr/bin/env bash
# Every GPU check of the CUDA path, in one go, on a machine with a CUDA device.
#
#   tests/cuda/run_device_checks.sh BUILD_DIR [OUT_DIR] [steps...]
#
# BUILD_DIR is a build with -DMBX_ENABLE_CUDA=ON -DMBX_BUILD_BENCHMARKS=ON
# (and -DMBX_ENABLE_PYTHON=ON for the Python/torch steps). Each step's log
# goes to OUT_DIR/<step>.log; a summary table is printed last. Steps (all by
# default): info sass golden cuda_tests unit python memcheck racecheck initcheck
# synccheck bench compare; on request: sanitize_large (RetinaNet-sized parity
# under memcheck and racecheck), profile and detail (ncu). The script does not
# stop at a failing step; its exit status is the number of failed steps.
#
# On a machine where the build's absolute paths do not exist (a copy of the
# tree elsewhere), set MBX_SRC_LINK=/abs/path/of/the/original/checkout and
# the script links it to this checkout first.
set -u
BUILD=$(cd "${1:?usage: run_device_checks.sh BUILD_DIR [OUT_DIR] [steps...]}" && pwd)
OUTD=${2:-${OUT:-/tmp/mbx-device-checks}}
shift $(( $# >= 2 ? 2 : 1 ))
STEPS=${*:-info sass golden cuda_tests unit python memcheck racecheck initcheck synccheck bench compare}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUTD"
DATA="$REPO/tests/data/golden $REPO/tests/data/generated $REPO/tests/data/stress"
SAN=${COMPUTE_SANITIZER:-compute-sanitizer}
command -v "$SAN" >/dev/null || SAN=/usr/local/cuda/bin/compute-sanitizer
PY=${PYTHON:-python3}
# The CUDA tests that are cheap enough to run under the sanitizers.
SAN_FILTER='CudaEdge.*:CudaExec.*:CudaHalf.*:CudaErrors.*:CudaParityOptions.*:CudaGolden.*:Modes/CudaCaffe.*:CudaCaffeMining.*:CudaCaffeExec.*:CudaAtss.OneLevel*:CudaAtss.MoreThan*'

# compute-sanitizer TOOL over `mbx_golden --path cuda` on DIRS (skipped when
# empty), then over mbx_cuda_tests with the gtest FILTER; extra arguments go
# to the sanitizer. Stops at the first failure.
sanitize() {  # tool, golden dirs, gtest filter, sanitizer flags...
  local tool=$1 dirs=$2 filter=$3; shift 3
  if [ -n "$dirs" ]; then
    # shellcheck disable=SC2086
    "$SAN" --tool "$tool" --error-exitcode 9 "$@" "$BUILD/tests/golden/mbx_golden" --path cuda $dirs ||
      return
  fi
  "$SAN" --tool "$tool" --error-exitcode 9 "$@" "$BUILD/tests/cuda/mbx_cuda_tests" \
    --gtest_filter="$filter"
}
export -f sanitize
export SAN BUILD

# shellcheck source=steps.sh
source "$REPO/tests/cuda/steps.sh"
for step in $STEPS; do
  case $step in
    info)
      run_step info 60 bash -c 'nvidia-smi; nvcc --version | tail -2; uname -a' ;;
    golden)
      # shellcheck disable=SC2086
      run_step golden 200 "$BUILD/tests/golden/mbx_golden" --path all $DATA ;;
    cuda_tests)
      run_step cuda_tests 200 "$BUILD/tests/cuda/mbx_cuda_tests" \
        --gtest_output=xml:"$OUTD/cuda_tests.xml" ;;
    unit)
      run_step unit 200 "$BUILD/tests/mbx_tests" ;;
    python)
      run_step python 200 env PYTHONPATH="$BUILD/python" "$PY" -m pytest -q -p no:cacheprovider \
        "$REPO/tests/python" -k cuda ;;
    memcheck)
      run_step memcheck 300 sanitize memcheck "$DATA" "$SAN_FILTER:Presets/CudaParity.*ssd300" \
        --leak-check full ;;
    racecheck)
      run_step racecheck 200 sanitize racecheck "$REPO/tests/data/golden" \
        'CudaEdge.*:CudaHalf.*:Presets/CudaParity.*ssd_pytorch_ssd300:CudaCaffeMining.*' ;;
    initcheck)
      run_step initcheck 150 sanitize initcheck "$REPO/tests/data/golden" \
        'CudaEdge.*:CudaHalf.*:CudaExec.*:CudaCaffeExec.*' ;;
    sanitize_large)
      # The RetinaNet-sized parity runs (P = 99765, C = 80) under memcheck and
      # racecheck: one softmax and one focal preset.
      run_step sanitize_large 450 bash -c 'sanitize memcheck "" "$1" && sanitize racecheck "" "$1"' _ \
        'Presets/CudaParity.*ssd_pytorch_retina:Presets/CudaParity.*tv_retinanet_retina' \
        ;;
    synccheck)
      run_step synccheck 100 sanitize synccheck "" 'CudaEdge.*:CudaParityOptions.*:CudaCaffeMining.*' \
        ;;
    sass)
      # docs/SPEC.md §2: no contracted FMA in the float64 IoU arithmetic that decides
      # matches (tests/cuda/check_sass_fma.py explains what it allows).
      run_step sass 120 bash -c "cuobjdump -sass '$BUILD/capi/libmbx.so.0' > /tmp/libmbx.sass &&
        python3 '$REPO/tests/cuda/check_sass_fma.py' /tmp/libmbx.sass" \
        ;;
    bench)
      run_step bench 120 "$BUILD/tests/bench/mbx_cuda_bench" ;;
    profile)
      # Per-kernel time and DRAM bytes of one warm call of each benchmark row.
      run_step profile 300 bash -c "MBX_BENCH_REPS=1 ncu --csv --cache-control none --clock-control none --metrics \
          gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size \
          $BUILD/tests/bench/mbx_cuda_bench > '$OUTD/profile.csv'; rc=\$?; tail -n 5 '$OUTD/profile.csv'; exit \$rc" \
        ;;
    detail)
      # Speed-of-light, occupancy and warp stall reasons of the heavy kernels.
      run_step detail 300 bash -c "MBX_BENCH_REPS=1 ncu --cache-control none --clock-control none \
          --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
          -k regex:'match_best_gt|match_force_scan|mine_kernel|ce_prep|ce_grad|focal_kernel|bipartite|he_|logistic' -c 60 \
          $BUILD/tests/bench/mbx_cuda_bench > '$OUTD/detail.txt'; rc=\$?; grep -c 'Section: GPU Speed' '$OUTD/detail.txt'; exit \$rc" \
        ;;
    compare)
      run_step compare 200 env PYTHONUNBUFFERED=1 "$PY" "$REPO/tests/bench/compare_cuda.py" \
        --build "$BUILD" --json "$OUTD/compare_cuda.json" ;;
    *) echo "unknown step $step"; fails=$((fails+1)) ;;
  esac
done
echo
step_summary "=== summary (logs in $OUTD)"
exit $fails
