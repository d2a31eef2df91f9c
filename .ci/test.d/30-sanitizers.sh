# ASan + UBSan build running the whole C/C++ suite and every golden set; valgrind memcheck of the runner.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
JOBS="$(nproc)" "$root/tests/sanitize/run_asan.sh"
"$root/tests/sanitize/run_valgrind.sh"   # its own CPU-only Release build
