#!/bin/sh
# Install-test of the mbx wheel: a fresh venv (Debian's python3 with system
# site-packages, for numpy/torch), `pip install` of the wheel with no index,
# then, from an empty directory with no build tree on any path:
#   - import mbx from the venv, check the extension loads the bundled libmbx,
#   - compute one golden case and compare with its expected losses,
#   - run the pytest suite (tests/python) against the installed package.
# Usage: packaging/python/test_wheel_install.sh dist/mbx-<ver>-<tag>.whl
set -eu
WHEEL=$(readlink -f "$1")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${MBX_TEST_PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --no-index --quiet "$WHEEL"
mkdir "$WORK/empty"
cd "$WORK/empty"
env -u PYTHONPATH -u LD_LIBRARY_PATH MBX_GOLDEN_DIR="$REPO/tests/data/golden" \
    MBX_WHEEL_NAME="$(basename "$WHEEL")" "$WORK/venv/bin/python" - "$WORK/venv" <<'PYEOF'
import glob, json, os, subprocess, sys
import numpy as np
import mbx
venv = os.path.realpath(sys.argv[1])
pkg = os.path.dirname(os.path.realpath(mbx.__file__))
assert pkg.startswith(venv), "mbx imported from %s, not from the venv" % pkg
ext = glob.glob(os.path.join(pkg, "_mbx_native*.so"))[0]
ldd = subprocess.run(["ldd", ext], capture_output=True, text=True, check=True).stdout
line = [l for l in ldd.splitlines() if "libmbx.so" in l][0]
assert os.path.join(pkg, "libmbx.so") in line, "libmbx resolved elsewhere: " + line
if "manylinux" in os.environ["MBX_WHEEL_NAME"]:
    # A repaired wheel carries its own libtbb (mbx.libs/), not the system's.
    libmbx = glob.glob(os.path.join(pkg, "libmbx.so*"))[0]
    tbb = [l for l in subprocess.run(["ldd", libmbx], capture_output=True, text=True,
                                     check=True).stdout.splitlines() if "libtbb" in l]
    assert tbb and "mbx.libs" in tbb[0], "libtbb not from the wheel: %s" % tbb
d = sorted(glob.glob(os.path.join(os.environ["MBX_GOLDEN_DIR"], "*", "case.json")))[0]
meta = json.load(open(d))
arr = {k: np.load(os.path.join(os.path.dirname(d), k + ".npy"))
       for k in ("priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf")}
out = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(
    *[arr[k] for k in ("priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf")])
for k in ("loss_loc", "loss_conf"):
    want = meta["expected"][k]
    assert abs(float(getattr(out, k)) - want) <= 1e-4 * abs(want) + 1e-7, (k, getattr(out, k), want)
print("wheel OK: mbx %s from %s, libmbx %s, %s: %s"
      % (mbx.version(), pkg, line.split("=>")[1].split()[0], meta["name"], out))
PYEOF
env -u PYTHONPATH -u LD_LIBRARY_PATH MBX_GOLDEN_DIR="$REPO/tests/data/golden" \
    "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider "$REPO/tests/python"
