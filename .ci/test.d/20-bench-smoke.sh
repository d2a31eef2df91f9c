# Comparison benchmark smoke run (tiny sizes, one run; checks, no timing asserts).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
PYTHONPATH="$build/python" "$root/.venv/bin/python" "$root/tests/bench/compare.py" --quick
