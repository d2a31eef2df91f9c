# JAX: mbx.jax (XLA FFI custom calls in libmbx_jax.so) on the JAX CPU backend.
#   bash .ci/test.d/15-jax.sh BUILD_DIR
# BUILD_DIR is the main build (-DMBX_ENABLE_PYTHON=ON; MBX_ENABLE_JAX follows
# it, so <build>/python/mbx holds libmbx_jax.so; if not, it is configured on
# and built here). jax/jaxlib/optax come pinned from PyPI into .venv-jax, a
# venv of its own (jax's numpy 2 breaks Debian's torch in .venv); it sees
# Debian's pytest through --system-site-packages. Runs tests/python_jax
# (every golden/generated/stress case jitted, shard_map on 4 CPU devices,
# concurrency, HLO, errors, the training example's short run; the CUDA tests
# skip without a GPU) and a smoke run of the JAX benchmark. About 2-4 minutes.
set -euo pipefail
build="$(cd "${1:?usage: 15-jax.sh BUILD_DIR}" && pwd)"
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-jax"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install -q -r "$root/.ci/requirements-jax.txt"
if [ ! -e "$build/python/mbx/libmbx_jax.so" ]; then
  echo "== building the JAX shim (MBX_ENABLE_JAX=ON)"
  cmake -S "$root" -B "$build" -DMBX_ENABLE_JAX=ON >/dev/null
  cmake --build "$build" --target mbx_jax mbx_python_package -j"$(nproc)"
fi
export PYTHONPATH="$build/python"
"$venv/bin/python" -c "import jax, mbx.jax; print('jax', jax.__version__, 'mbx', mbx.version())"
"$venv/bin/python" -m pytest "$root/tests/python_jax" -q -p no:cacheprovider
"$venv/bin/python" "$root/tests/bench/jax_bench.py" --quick --runs 3
