#!/usr/bin/env bash
# mbx.jax on a CUDA GPU, in one go (under 3 minutes on an H100/H200):
#
#   tests/cuda/device_jax.sh OUT_DIR
#
# Needs: python3 with jax[cuda] (jax >= 0.10), CuPy, pytest; mbx's Python
# package built with CUDA (it holds libmbx_jax.so, the XLA FFI shim) on
# PYTHONPATH (or set MBX_PYTHON_DIR=<build>/python), and libtbb.so.12 on
# LD_LIBRARY_PATH if the machine lacks it (copy it next to libmbx.so.0).
# No network. Steps, each logged to OUT_DIR/<step>.log:
#   info     GPU, driver, jax / jaxlib / CuPy versions, jax devices
#   tests    tests/python_jax on the GPU: every golden/generated/stress case
#            jitted (loss + grad + match), f16/bf16, traced EXTERNAL norm,
#            invalid GT skipped without an error, a training loop inside
#            jax.lax.scan, the shim's C call sequence under CUDA stream
#            capture (no host sync), CuPy in -> CuPy out, JAX GPU in -> out;
#            plus two CPU tests (junit XML in OUT_DIR/tests.xml)
#   hlo      the compiled GPU HLO of jit(value_and_grad): one custom call
#            mbx_loss_forward_backward, no host callback
#   bench    tests/bench/jax_bench.py --device gpu (mbx.jax vs the eager C
#            call through CuPy vs pure jnp; SSD300 B=32, RetinaNet B=8)
# The exit status is the number of failed steps.
set -u
OUTD=${1:?usage: device_jax.sh OUT_DIR}
mkdir -p "$OUTD"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
if [ -n "${MBX_PYTHON_DIR:-}" ]; then
  export PYTHONPATH="$MBX_PYTHON_DIR${PYTHONPATH:+:$PYTHONPATH}"
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # leave room for CuPy and mbx's eager calls

STEP_TAIL=30
# shellcheck source=steps.sh
source "$REPO/tests/cuda/steps.sh"

run_step info 60 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; \
  $PY -c 'import sys, jax, jaxlib, mbx, mbx.jax; print(sys.version); \
print(\"jax\", jax.__version__, \"jaxlib\", jaxlib.__version__, jax.devices()); \
print(\"mbx\", mbx.version(), \"cuda\", mbx.cuda_available(), mbx.jax.library_path()); \
import cupy; print(\"cupy\", cupy.__version__)'"

run_step tests 150 "$PY" -m pytest -q -p no:cacheprovider -rs --junitxml="$OUTD/tests.xml" \
  "$REPO/tests/python_jax/test_jax_cuda.py" \
  "$REPO/tests/python_jax/test_jax.py::test_hlo_has_custom_call_and_no_callback" \
  "$REPO/tests/python_jax/test_jax.py::test_eager_api_returns_jax_arrays_on_the_input_device"

run_step hlo 60 "$PY" - <<'EOF'
import re, sys
import numpy as np, jax, jax.numpy as jnp
import mbx, mbx.jax as mj
gpu = jax.devices("gpu")[0]
B, P, C, G = 4, 8732, 21, 3
priors = mbx.priors_ssd("voc")
gt = np.tile(np.array([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8], [0.2, 0.5, 0.4, 0.9]],
                      np.float32), (B, 1, 1))
args = [jax.device_put(jnp.asarray(a), gpu) for a in (
    priors, gt, np.zeros((B, G), np.int32), np.full((B,), G, np.int32),
    np.zeros((B, P, 4), np.float32), np.zeros((B, P, C), np.float32))]
def total(loc, conf, *gt):
    a, b, _ = mj.multibox_loss(*gt, loc, conf)
    return a + b
f = jax.jit(jax.grad(total, argnums=(0, 1)))
text = f.lower(args[4], args[5], *args[:4]).compile().as_text()
targets = re.findall(r'custom_call_target="([^"]+)"', text)
print("custom call targets in the compiled GPU HLO:", targets)
assert targets.count("mbx_loss_forward_backward") == 1, targets
assert not [t for t in targets if "callback" in t], targets
out = f(args[4], args[5], *args[:4])
jax.block_until_ready(out)
print("grad_conf sum", float(jnp.sum(out[1])))
EOF

run_step bench 150 "$PY" "$REPO/tests/bench/jax_bench.py" --device gpu --runs 10 \
  --json "$OUTD/jax_bench_gpu.json"

step_summary "== summary (failed steps: $fails)"
exit "$fails"
