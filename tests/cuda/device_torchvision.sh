#!/usr/bin/env bash
# GPU checks of mbx.torch.use_mbx_loss (torchvision SSD / SSDlite / RetinaNet
# on mbx's loss) and the training-step benchmark at the issue's sizes.
#
#   tests/cuda/device_torchvision.sh OUT_DIR
#
# Needs python3 (PYTHON=... overrides) with torch, torchvision and pytest, and
# mbx's Python package of a CUDA build importable (PYTHONPATH=<build>/python,
# LD_LIBRARY_PATH for libtbb if it is not a system library). Nothing is
# downloaded (random weights). Steps, each logged to OUT_DIR/<step>.log:
#   info    versions, the GPU, mbx.cuda_available()
#   pytest  tests/python/test_torchvision_dropin.py (CPU and CUDA cases:
#           losses and parameter gradients equal torchvision's, AMP fp16/bf16,
#           deferred validation, torch.compile) and test_torchvision_ddp.py
#   bench   tests/bench/train_step.py at the issue's sizes (ssd300_vgg16 B=32,
#           ssdlite320 B=64, retinanet_resnet50_fpn B=8 at 640x832), float32;
#           table in bench.log, rows in OUT_DIR/train_step.json
#   bench_amp  the same under torch.autocast (fp16)
# STEPS="bench bench_amp" (environment) runs a subset. A summary is printed
# last; the exit status is the number of failed steps.
# About 2-3 minutes on an H100 / H200.
set -u
OUTD=${1:?usage: device_torchvision.sh OUT_DIR}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUTD"
OUTD=$(cd "$OUTD" && pwd)
cd "$REPO" || exit 1

STEP_TAIL=20
# shellcheck source=steps.sh
source "$REPO/tests/cuda/steps.sh"

STEPS=" ${STEPS:-info pytest bench bench_amp} "
want() { [[ "$STEPS" == *" $1 "* ]]; }

want info && run_step info 60 "$PY" -c "
import torch, torchvision, mbx, mbx.torch
print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'mbx', mbx.version(), mbx.__file__)
print('cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))
assert torch.cuda.is_available(), 'torch sees no GPU'
assert mbx.cuda_available(), 'mbx was built without CUDA or sees no device'
"
# -rs lists the skipped tests: on a GPU machine only the torch-version skips may remain.
want pytest && run_step pytest 150 "$PY" -m pytest -q -rs -p no:cacheprovider \
  tests/python/test_torchvision_dropin.py tests/python/test_torchvision_ddp.py
want bench && run_step bench 150 "$PY" tests/bench/train_step.py --device cuda --json "$OUTD/train_step.json"
want bench_amp && run_step bench_amp 120 "$PY" tests/bench/train_step.py --device cuda --amp --repeat 6 \
  --json "$OUTD/train_step_amp.json"

step_summary "=== summary ($OUTD)"
exit "$fails"
