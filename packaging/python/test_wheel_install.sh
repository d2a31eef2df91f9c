#!/bin/sh
# Install-test of an mbx wheel (or sdist) in a fresh venv, then, from an
# empty directory with no build tree and no build tools on PATH:
#   - import mbx from the venv; the extension loads the package's libmbx, a
#     manylinux wheel's libmbx its bundled libtbb; the JAX shim and py.typed
#     are there,
#   - compute one golden case and compare with its expected losses,
#   - run the pytest suite (tests/python) against the installed package with
#     every golden, generated and stress case (tests/data/*); torch tests
#     skip where the venv has no torch.
# Usage: packaging/python/test_wheel_install.sh WHEEL_OR_SDIST [PYTHON]
#   PYTHON: the interpreter of the venv (default /usr/bin/python3).
#   MBX_TEST_SYSTEM_SITE=1: the venv sees the system's site-packages
#     (Debian's numpy, torch, pytest) and pip installs with --no-index;
#     otherwise numpy and pytest come from PyPI (requirements-test.txt,
#     binary wheels only).
#   A .tar.gz is built from source by pip (build isolation: setuptools, swig
#   from PyPI; cmake, a compiler and the -dev packages from the system);
#   MBX_ENABLE_CUDA etc. pass through to setup.py.
set -eu
PKG=$(readlink -f "$1")
PY=${2:-${MBX_TEST_PYTHON:-/usr/bin/python3}}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
if [ "${MBX_TEST_SYSTEM_SITE:-0}" = 1 ]; then
  "$PY" -m venv --system-site-packages "$VENV"
  PIP_ARGS="--no-index"
else
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
      -r "$HERE/requirements-test.txt"
  PIP_ARGS="--only-binary=numpy"
fi
case "$PKG" in
  *.whl)
    # No build tools in the venv: nothing can be compiled at install time.
    "$VENV/bin/python" -m pip uninstall --quiet -y setuptools wheel 2>/dev/null || true
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$PKG" ;;
  *.tar.gz)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$PKG" ;;
  *) echo "not a wheel or sdist: $PKG" >&2; exit 2 ;;
esac
# PATH: the venv and ldd only (no compiler, cmake, swig, nvcc).
mkdir "$WORK/bin" "$WORK/empty"
ln -s "$(command -v ldd)" "$WORK/bin/ldd"
cd "$WORK/empty"
env -i HOME="$WORK" PATH="$VENV/bin:$WORK/bin" MBX_GOLDEN_DIR="$REPO/tests/data/golden" \
    MBX_PKG_NAME="$(basename "$PKG")" "$VENV/bin/python" - "$VENV" <<'PYEOF'
import glob, json, os, subprocess, sys
import numpy as np
import mbx
venv = os.path.realpath(sys.argv[1])
pkg = os.path.dirname(os.path.realpath(mbx.__file__))
assert pkg.startswith(venv), "mbx imported from %s, not from the venv" % pkg
ext = glob.glob(os.path.join(pkg, "_mbx_native*.so"))
assert len(ext) == 1, ext
ldd = subprocess.run(["ldd", ext[0]], capture_output=True, text=True, check=True).stdout
line = [l for l in ldd.splitlines() if "libmbx.so" in l][0]
assert os.path.join(pkg, "libmbx.so") in line, "libmbx resolved elsewhere: " + line
for f in ("py.typed", "__init__.pyi", "libmbx_jax.so"):
    assert os.path.exists(os.path.join(pkg, f)), "mbx/%s missing" % f
shim = subprocess.run(["ldd", os.path.join(pkg, "libmbx_jax.so")], capture_output=True,
                      text=True, check=True).stdout
assert os.path.join(pkg, "libmbx.so") in shim, "the JAX shim's libmbx: " + shim
name = os.environ["MBX_PKG_NAME"]
if "manylinux" in name:
    # A repaired wheel carries its own libtbb (mbx.libs/), not the system's.
    libmbx = glob.glob(os.path.join(pkg, "libmbx.so*"))[0]
    tbb = [l for l in subprocess.run(["ldd", libmbx], capture_output=True, text=True,
                                     check=True).stdout.splitlines() if "libtbb" in l]
    assert tbb and "mbx.libs" in tbb[0], "libtbb not from the wheel: %s" % tbb
if "abi3" in name:
    assert ext[0].endswith(".abi3.so"), ext
d = sorted(glob.glob(os.path.join(os.environ["MBX_GOLDEN_DIR"], "*", "case.json")))[0]
meta = json.load(open(d))
arr = {k: np.load(os.path.join(os.path.dirname(d), k + ".npy"))
       for k in ("priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf")}
out = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(
    *[arr[k] for k in ("priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf")])
for k in ("loss_loc", "loss_conf"):
    want = meta["expected"][k]
    assert abs(float(getattr(out, k)) - want) <= 1e-4 * abs(want) + 1e-7, (k, getattr(out, k), want)
print("install OK: mbx %s on Python %s, numpy %s, from %s, libmbx %s, %s: %s"
      % (mbx.version(), sys.version.split()[0], np.__version__, pkg,
         line.split("=>")[1].split()[0], meta["name"], out))
PYEOF
env -i HOME="$WORK" PATH="$VENV/bin:$WORK/bin" LANG=C.UTF-8 \
    MBX_GOLDEN_DIR="$REPO/tests/data/golden" \
    MBX_GOLDEN_DIRS="$REPO/tests/data/generated:$REPO/tests/data/stress" \
    MBX_PROJECT_VERSION="$(sed -n 's/^project( *mbx  *VERSION  *\([0-9.]*\).*/\1/p' "$REPO/CMakeLists.txt")" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider -rs "$REPO/tests/python" > "$WORK/pytest.log" 2>&1 \
    || { cat "$WORK/pytest.log"; exit 1; }
# The summary, and which skips there were (torch missing, no GPU, ...).
grep -E "^SKIPPED" "$WORK/pytest.log" | sed 's/^SKIPPED \[[0-9]*\] [^:]*:[0-9]*: /skipped: /' | sort | uniq -c
tail -1 "$WORK/pytest.log"
