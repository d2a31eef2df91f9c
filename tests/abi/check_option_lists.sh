#!/bin/sh
# "Declare each fact once": the options are declared in
# core/common/options_table.h and, as the C struct's fields, in
# capi/include/mbx/mbx.h. Every other file under capi/, core/ and bindings/
# reads them from there (the X-macro, or the introspection calls
# mbx_option_count / mbx_option_name / ...), so at most one more file may
# name half or more of the options (a test fixture or a doc listing them
# with their meaning). Prints each file that does, with its count.
#
# Usage: check_option_lists.sh [source-root]   (default: this script's ../..)
set -eu
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
table=core/common/options_table.h
# The option names: the first field of each row of MBX_OPTION_TABLE.
names=$(sed -n '/^#define MBX_OPTION_TABLE/,/^#define MBX_PRESET_TABLE/p' "$table" |
  grep -o '^ *X([a-z0-9_]*' | sed 's/.*X(//')
count=$(printf '%s\n' $names | wc -l)
if [ "$count" -lt 2 ]; then
  echo "check_option_lists: found $count option rows in $table" >&2
  exit 1
fi
listing=$(for name in $names; do grep -rIlw -e "$name" capi core bindings || true; done |
  sort | uniq -c | awk -v n="$count" '2 * $1 >= n { print $2 " " $1 }')
echo "files naming at least half of the $count options:"
printf '%s\n' "$listing" | sed 's/^/  /'
others=$(printf '%s\n' "$listing" | awk '$1 != "capi/include/mbx/mbx.h" && $1 != "'"$table"'" { print $1 }')
n_others=$(printf '%s' "$others" | grep -c . || true)
if ! printf '%s\n' "$listing" | grep -q "^$table "; then
  echo "FAIL: $table does not list the options" >&2
  exit 1
fi
if [ "$n_others" -gt 1 ]; then
  echo "FAIL: $n_others files besides mbx.h and $table list the options:" >&2
  printf '%s\n' "$others" | sed 's/^/  /' >&2
  exit 1
fi
echo "OK"
