# Python wheel: build it from packaging/python and install-test it in a fresh venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$root/dist"
"$root/.venv/bin/python" -m build --wheel --no-isolation --outdir "$root/dist" "$root/packaging/python"
"$root/packaging/python/test_wheel_install.sh" "$root"/dist/mbx-*.whl
