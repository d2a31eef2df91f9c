# The SASS check of docs/SPEC.md §2 without a GPU: no contracted FMA in the
# float64 arithmetic of the kernels that decide matches (IoU, IoF, the ATSS
# statistics, the HARD_EXAMPLE NMS), on every architecture the library
# carries. cuobjdump and nvdisasm come from PyPI (NVIDIA's wheels); the
# toolkit on this machine has neither. Skipped for a build without CUDA.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
lib="$build/capi/libmbx.so.0"
if ! readelf -S "$lib" | grep -q nv_fatbin; then
  echo "no CUDA code in $lib: skipped"
  exit 0
fi
tools="$build/cuda-tools"
if [ ! -x "$tools/bin/cuobjdump" ] || [ ! -x "$tools/bin/nvdisasm" ]; then
  rm -rf "$tools" && mkdir -p "$tools/wheels" "$tools/bin"
  "$root/.venv/bin/python" -m pip download -q --no-deps -d "$tools/wheels" \
    -r "$root/.ci/requirements-cuda-tools.txt"
  for w in "$tools"/wheels/*.whl; do "$root/.venv/bin/python" -m zipfile -e "$w" "$tools/x"; done
  for t in cuobjdump nvdisasm; do
    cp "$(find "$tools/x" -name "$t" -type f | head -n 1)" "$tools/bin/$t"
    chmod +x "$tools/bin/$t"
  done
fi
PATH="$tools/bin:$PATH" cuobjdump -sass "$lib" > "$build/libmbx.sass"
python3 "$root/tests/cuda/check_sass_fma.py" "$build/libmbx.sass"
