# Python wheel: build it from packaging/python, make it a manylinux wheel with
# libtbb bundled (auditwheel repair picks the most compatible tag this
# toolchain allows: manylinux_2_34 on Debian 12), and install-test that in a
# fresh venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$root/dist"
"$root/.venv/bin/python" -m build --wheel --no-isolation --outdir "$root/dist/raw" "$root/packaging/python"
PATH="$root/.venv/bin:$PATH" "$root/.venv/bin/auditwheel" repair -w "$root/dist" "$root"/dist/raw/mbx-*.whl
"$root/packaging/python/test_wheel_install.sh" "$root"/dist/mbx-*manylinux*.whl
