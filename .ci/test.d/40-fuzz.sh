# libFuzzer targets (clang-14, ASan + UBSan) for a bounded time each.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tests/fuzz/run_fuzz.sh" "${MBX_FUZZ_SECONDS:-60}" "${MBX_FUZZ_SECONDS:-60}"
