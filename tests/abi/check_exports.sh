#!/bin/sh
# Every function declared MBX_API in mbx.h is exported by libmbx.so, and
# nothing else is (no C++ or static-dependency symbols leak); the soname
# carries the major version.
set -eu
lib="$1"; header="$2"; major="$3"
declared=$(grep -E '^MBX_API ' "$header" | grep -oE '[a-z_0-9]+\(' | head -1000 | sed 's/(//' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWiVDBR]$/ {print $3}' | sed 's/@.*//' | sort -u)
status=0
for f in $declared; do
  printf '%s\n' "$exported" | grep -qx "$f" || { echo "declared but not exported: $f"; status=1; }
done
for s in $exported; do
  printf '%s\n' "$declared" | grep -qx "$s" || { echo "exported but not declared: $s"; status=1; }
done
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libmbx.so.$major" ] || { echo "soname is '$soname', expected libmbx.so.$major"; status=1; }
n=$(printf '%s\n' "$declared" | wc -l)
[ $status -eq 0 ] && echo "OK: $n functions declared and exported, nothing else; soname $soname"
exit $status
