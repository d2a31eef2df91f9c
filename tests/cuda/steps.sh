# The step runner of the GPU check scripts (run_device_checks.sh,
# device_jax.sh, device_torchvision.sh), sourced by each; OUTD is the log
# folder.
#   run_step NAME SECONDS COMMAND...  runs COMMAND (a program, or a function
#       the script exported) under `timeout` with its output in
#       $OUTD/NAME.log, prints the log's last STEP_TAIL lines and records a
#       summary row; a failed step adds one to $fails. Returns its status.
#   step_summary TITLE  prints TITLE and the rows, also into $OUTD/summary.txt.
declare -a SUMMARY=()
fails=0

run_step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc
  echo "=== $name: $*" | tee "$OUTD/$name.log"
  timeout "$limit" bash -c '"$@"' _ "$@" >>"$OUTD/$name.log" 2>&1
  rc=$?
  tail -n "${STEP_TAIL:-25}" "$OUTD/$name.log"
  SUMMARY+=("$(printf '%-14s rc=%-4s %5ds' "$name" "$rc" $((SECONDS - t0)))")
  [ "$rc" -eq 0 ] || fails=$((fails + 1))
  return "$rc"
}

step_summary() {
  printf '%s\n' "$1" "${SUMMARY[@]}" | tee "$OUTD/summary.txt"
}
