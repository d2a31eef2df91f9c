# Python release artefacts and their install matrix.
#  1. packaging/python/build_wheel.sh writes dist/: the cp39-abi3 manylinux
#     wheel and the sdist. The wheel packages the libmbx of CI's build tree
#     ($1, CUDA-enabled when nvcc exists), so the CUDA code is compiled once;
#     the wheel's own CMake tree builds the limited-API extension and the JAX
#     shim (CPU-only). build_wheel.sh checks .nv_fatbin, bundled libtbb,
#     py.typed and the shim.
#  2. The wheel, installed from its file into fresh venvs of pyenv's CPython
#     3.9 and 3.13 (numpy and pytest from PyPI, binary only, no build tools
#     on PATH), runs tests/python with every golden, generated and stress
#     case from an empty directory (torch tests skip: no torch there), and
#     into Debian's python3 with its torch (the torch and torchvision tests).
#  3. The sdist, built from source by pip in a CPython 3.12 venv (CPU-only
#     here, to save CI time: the CUDA compile is the main build's) and tested
#     the same way.
#  4. mypy --strict (pinned) on packaging/python/typed_example.py against the
#     installed wheel, then the example runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$root/build-ci-wheel"
dist="$root/dist"
t0=$SECONDS
stamp() { echo "-- $1: $((SECONDS - t0)) s"; }

pyenv_python() {  # newest pyenv CPython X.Y
  local p
  p=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/python 2>/dev/null | sort -V | tail -1)
  [ -n "$p" ] || { echo "no CPython $1 under ${PYENV_ROOT:-$HOME/.pyenv}/versions" >&2; return 1; }
  echo "$p"
}
PY39=$(pyenv_python 3.9)
PY312=$(pyenv_python 3.12)
PY313=$(pyenv_python 3.13)

rm -rf "$dist"
MBX_WHEEL_WORK="$work" MBX_WHEEL_LIBMBX="$build/python/mbx/libmbx.so.0" \
  "$root/packaging/python/build_wheel.sh" "$dist"
wheel=$(ls "$dist"/mbx-*-cp39-abi3-manylinux_*_x86_64.whl)
sdist=$(ls "$dist"/mbx-*.tar.gz)
stamp "wheel + sdist"

for py in "$PY39" "$PY313"; do
  echo "== wheel on $("$py" --version)"
  "$root/packaging/python/test_wheel_install.sh" "$wheel" "$py"
  stamp "wheel on $py"
done
echo "== wheel on Debian's python3 with torch"
MBX_TEST_SYSTEM_SITE=1 "$root/packaging/python/test_wheel_install.sh" "$wheel" /usr/bin/python3
stamp "wheel on /usr/bin/python3"

echo "== sdist on $("$PY312" --version) (CPU-only build)"
MBX_ENABLE_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "$root/packaging/python/test_wheel_install.sh" "$sdist" "$PY312"
stamp "sdist on $PY312"

echo "== mypy --strict packaging/python/typed_example.py"
tv="$work/typing-venv"
rm -rf "$tv"
/usr/bin/python3 -m venv --system-site-packages "$tv"
"$tv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$root/packaging/python/requirements-typing.txt"
"$tv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps "$wheel"
mkdir -p "$work/empty"
(cd "$work/empty" && cp "$root/packaging/python/typed_example.py" . &&
 "$tv/bin/mypy" --strict --no-incremental typed_example.py && "$tv/bin/python" typed_example.py)
stamp "typing"
