#!/usr/bin/env bash
# Release artefacts of the mbx Python package, written into DIST_DIR:
#   mbx-<version>-cp39-abi3-manylinux_<glibc>_x86_64.whl  one wheel for CPython >= 3.9
#       (limited API), with the CUDA path when nvcc is present (the project's
#       default architectures, cudart static: it runs unchanged without a GPU
#       or driver), libtbb bundled by auditwheel, the JAX shim, py.typed + stubs;
#   mbx-<version>.tar.gz  the sdist (`pip install` builds it from source).
# Then checks the wheel: tag, .nv_fatbin in libmbx (CUDA builds), bundled
# libtbb, py.typed, the shim, and prints `auditwheel show`.
#
# Usage: packaging/python/build_wheel.sh DIST_DIR
# Needs: python3 >= 3.9 with headers (MBX_WHEEL_PYTHON), a C++17 compiler,
# cmake >= 3.18, ninja, libtbb-dev, libxsimd-dev, libdlpack-dev, PyPI access
# (the pinned tools of requirements-build.txt go into a venv), nvcc optional.
# Environment:
#   MBX_WHEEL_WORK     scratch folder (default <repo>/build-whl): tools venv,
#                      CMake trees (reused: rebuilds are incremental), raw wheel
#   MBX_WHEEL_PYTHON   interpreter for the tools venv (default python3)
#   MBX_ENABLE_CUDA    ON / OFF (default ON when nvcc is found)
#   MBX_WHEEL_LIBMBX   package this prebuilt libmbx.so.<major> instead of
#                      building one (CI: its build tree's CUDA libmbx, so the
#                      CUDA code is compiled once); the tree here is CPU-only
#   MBX_CUDA_ARCHITECTURES, CMAKE_BUILD_PARALLEL_LEVEL: see setup.py
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIST_DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
mkdir -p "$1"
DIST=$(cd "$1" && pwd)
WORK=${MBX_WHEEL_WORK:-$REPO/build-whl}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
T="$WORK/tools/bin"

echo "== tools venv ($WORK/tools)"
if [ ! -x "$T/python" ]; then
  "${MBX_WHEEL_PYTHON:-python3}" -m venv "$WORK/tools"
fi
"$T/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements-build.txt"

# CUDA: wanted when nvcc exists (unless MBX_ENABLE_CUDA says otherwise).
NVCC=$(command -v nvcc || true)
[ -n "$NVCC" ] || { [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc; } || true
WANT_CUDA=${MBX_ENABLE_CUDA:-$([ -n "$NVCC" ] && echo ON || echo OFF)}
if [ -n "${MBX_WHEEL_LIBMBX:-}" ]; then
  MBX_WHEEL_LIBMBX=$(readlink -f "$MBX_WHEEL_LIBMBX")
  export MBX_WHEEL_LIBMBX
  export MBX_ENABLE_CUDA=OFF          # the CMake tree only builds the bindings' side
  tree=cmake-prebuilt
else
  export MBX_ENABLE_CUDA=$WANT_CUDA
  if [ "$WANT_CUDA" = ON ] && [ -n "$NVCC" ] && ! command -v nvcc >/dev/null; then
    export CUDACXX="$NVCC"
  fi
  tree=cmake-cuda$WANT_CUDA
fi
export MBX_WHEEL_BUILD_DIR="${MBX_WHEEL_BUILD_DIR:-$WORK/$tree}"
export MBX_WHEEL_SCRATCH="$WORK/scratch"

rm -f "$DIST"/mbx-*.whl "$DIST"/mbx-*.tar.gz
rm -rf "$WORK/raw" "$WORK/check"
echo "== sdist"
"$T/python" -m build --sdist --no-isolation --outdir "$DIST" "$HERE"
echo "== wheel (CUDA: $WANT_CUDA${MBX_WHEEL_LIBMBX:+, libmbx: $MBX_WHEEL_LIBMBX})"
"$T/python" -m build --wheel --no-isolation --outdir "$WORK/raw" "$HERE"
echo "== auditwheel repair"
PATH="$T:$PATH" "$T/auditwheel" repair -w "$DIST" "$WORK"/raw/mbx-*.whl

echo "== checks"
shopt -s nullglob
wheels=("$DIST"/mbx-*-cp39-abi3-manylinux_*_x86_64.whl)
sdists=("$DIST"/mbx-*.tar.gz)
[ ${#wheels[@]} -eq 1 ] || { echo "expected one cp39-abi3 manylinux wheel in $DIST" >&2; ls "$DIST" >&2; exit 1; }
[ ${#sdists[@]} -eq 1 ] || { echo "expected one sdist in $DIST" >&2; exit 1; }
WHEEL=${wheels[0]}
"$T/python" -m zipfile -e "$WHEEL" "$WORK/check"
pkg="$WORK/check/mbx"
fail() { echo "check failed: $*" >&2; exit 1; }
for f in py.typed __init__.pyi _core.pyi torch.pyi jax.pyi _mbx_native.abi3.so libmbx_jax.so; do
  [ -e "$pkg/$f" ] || fail "mbx/$f missing"
done
libmbx=("$pkg"/libmbx.so.*)
[ ${#libmbx[@]} -eq 1 ] || fail "expected one libmbx.so.<major> in the wheel"
tbb=("$WORK"/check/mbx.libs/libtbb*.so*)
[ ${#tbb[@]} -ge 1 ] || fail "libtbb not bundled (mbx.libs/)"
if [ "$WANT_CUDA" = ON ]; then
  # (Whole outputs into grep: with pipefail, grep -q closing a pipe early fails it.)
  sections=$(readelf -S -W "${libmbx[0]}")
  grep -q '\.nv_fatbin' <<<"$sections" || fail "libmbx has no .nv_fatbin section (no CUDA code)"
  if grep -q 'libcudart' <<<"$(readelf -d "${libmbx[0]}")"; then fail "libmbx links a shared libcudart"; fi
  echo "libmbx: .nv_fatbin $(readelf -S -W "${libmbx[0]}" | awk '/\.nv_fatbin/ {print "0x" $6 " bytes"}'), GPU code: $(strings -a "${libmbx[0]}" | grep -o 'sm_[0-9]*a\?' | sort -u | tr '\n' ' ')"
fi
PATH="$T:$PATH" "$T/auditwheel" show "$WHEEL"
ls -l "$WHEEL" "${sdists[0]}"
echo "wheel: $WHEEL"
echo "sdist: ${sdists[0]}"
