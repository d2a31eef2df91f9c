#!/usr/bin/env bash
# Install test for C/C++ consumers of mbx.
#
#   packaging/test_install.sh <build-dir>
#
# 1. cmake --install <build-dir> (components runtime + development) into a
#    fresh temporary prefix, and checks the installed file set;
# 2. builds packaging/examples/consumer (a separate CMake project doing
#    find_package(mbx 0.1 REQUIRED) + mbx::mbx) against that prefix and runs it;
# 3. compiles packaging/examples/pkgconfig_example.c with
#    `cc ... $(pkg-config --cflags --libs mbx)` and runs it;
# 4. compiles packaging/examples/dlopen_example.c with -ldl only (checks it
#    has no DT_NEEDED on libmbx), runs it on <prefix>/<libdir>/libmbx.so.0 and
#    through the default search path (LD_LIBRARY_PATH);
# 5. checks every printed number is finite and that the three programs agree
#    on the one-image batch (losses, positives, gradient sums).
# Exits non-zero on any failure. Needs: cmake, a C compiler (CC, default cc),
# pkg-config, and readelf (binutils). Set MBX_KEEP_TMP=1 to keep the prefix.
set -euo pipefail

die() { echo "test_install: FAIL: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

[[ $# -eq 1 ]] || { echo "usage: $0 <build-dir>" >&2; exit 2; }
build=$(cd "$1" && pwd) || die "no build dir $1"
[[ -f $build/CMakeCache.txt ]] || die "$build is not a CMake build dir (no CMakeCache.txt)"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
examples=$here/examples
CC=${CC:-cc}
for tool in cmake "$CC" pkg-config readelf; do
  command -v "$tool" >/dev/null || die "'$tool' not found (Debian: apt-get install cmake build-essential pkg-config)"
done

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n1; }
libdir_rel=$(cache CMAKE_INSTALL_LIBDIR); libdir_rel=${libdir_rel:-lib}
incdir_rel=$(cache CMAKE_INSTALL_INCLUDEDIR); incdir_rel=${incdir_rel:-include}
[[ $libdir_rel != /* && $incdir_rel != /* ]] ||
  die "absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR: cannot install into a temporary prefix"
extra_flags=()
if [[ $(cache MBX_ENABLE_SANITIZERS) == ON ]]; then
  # libmbx.so is instrumented: the programs must carry the sanitizer runtimes.
  extra_flags=("-fsanitize=address,undefined")
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbx-install-test.XXXXXX")
cleanup() { if [[ ${MBX_KEEP_TMP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
prefix=$tmp/prefix
libdir=$prefix/$libdir_rel

# ---------------------------------------------------------------------------
step "install $build -> $prefix"
for comp in runtime development; do
  cmake --install "$build" --prefix "$prefix" --component "$comp" >"$tmp/install-$comp.log" ||
    { cat "$tmp/install-$comp.log"; die "cmake --install --component $comp"; }
done
(cd "$prefix" && find . \( -type f -o -type l \) | sort)

version=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$libdir/cmake/mbx/mbxConfigVersion.cmake")
major=${version%%.*}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no version in mbxConfigVersion.cmake"
[[ -f $libdir/libmbx.so.$version && ! -L $libdir/libmbx.so.$version ]] || die "missing $libdir/libmbx.so.$version"
[[ $(readlink "$libdir/libmbx.so.$major") == libmbx.so.$version ]] || die "libmbx.so.$major is not a link to libmbx.so.$version"
[[ $(readlink "$libdir/libmbx.so") == libmbx.so.$major ]] || die "libmbx.so is not a link to libmbx.so.$major"
for f in "$prefix/$incdir_rel/mbx/mbx.h" "$libdir/cmake/mbx/mbxConfig.cmake" \
         "$libdir/cmake/mbx/mbxConfigVersion.cmake" "$libdir/cmake/mbx/mbxTargets.cmake" \
         "$libdir/pkgconfig/mbx.pc"; do
  [[ -f $f ]] || die "missing $f"
done
readelf -d "$libdir/libmbx.so.$version" >"$tmp/dynamic.txt"
grep -q "SONAME.*\[libmbx.so.$major\]" "$tmp/dynamic.txt" || die "soname is not libmbx.so.$major"
if grep -E 'R(UN)?PATH' "$tmp/dynamic.txt" | grep -qF "$build"; then
  die "installed libmbx.so still has an RPATH into the build tree"
fi
if grep -rqF "$build" "$libdir/cmake/mbx" "$libdir/pkgconfig/mbx.pc"; then
  die "installed package files reference the build tree $build"
fi
echo "ok: files, soname links, SONAME libmbx.so.$major, no build-tree paths"

# The programs must use the library just installed, never another one.
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
uses_installed_lib() {  # <program>
  local got
  got=$(ldd "$1" | awk '$1 ~ /^libmbx\.so/ {print $3}')
  [[ $(readlink -f "$got") == $(readlink -f "$libdir/libmbx.so.$major") ]] ||
    die "$1 loads libmbx from '$got', not from $libdir"
}

# ---------------------------------------------------------------------------
step "CMake consumer project (find_package(mbx ${version%.*}) via CMAKE_PREFIX_PATH)"
cmake -S "$examples/consumer" -B "$tmp/consumer" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_COMPILER="$CC" -DCMAKE_PREFIX_PATH="$prefix" \
      ${extra_flags:+-DCMAKE_C_FLAGS="${extra_flags[*]}"} >"$tmp/consumer-configure.log" ||
  { cat "$tmp/consumer-configure.log"; die "consumer: configure"; }
grep -q "^mbx_DIR:PATH=$libdir/cmake/mbx\$" "$tmp/consumer/CMakeCache.txt" ||
  die "consumer found mbx somewhere else: $(grep '^mbx_DIR' "$tmp/consumer/CMakeCache.txt")"
cmake --build "$tmp/consumer" >"$tmp/consumer-build.log" 2>&1 ||
  { cat "$tmp/consumer-build.log"; die "consumer: build"; }
uses_installed_lib "$tmp/consumer/mbx_consumer"
"$tmp/consumer/mbx_consumer" | tee "$tmp/consumer.out" || die "consumer: run"

# A version the package must refuse (next major).
mkdir -p "$tmp/refuse"
cat >"$tmp/refuse/CMakeLists.txt" <<CMK
cmake_minimum_required(VERSION 3.18)
project(refuse LANGUAGES NONE)
find_package(mbx $((major + 1)).0 QUIET)
if(mbx_FOUND)
  message(FATAL_ERROR "find_package(mbx $((major + 1)).0) accepted mbx \${mbx_VERSION}")
endif()
CMK
cmake -S "$tmp/refuse" -B "$tmp/refuse/build" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/refuse.log" 2>&1 ||
  { cat "$tmp/refuse.log"; die "mbxConfigVersion.cmake accepted major version $((major + 1))"; }
echo "ok: find_package(mbx $((major + 1)).0) refused"

# ---------------------------------------------------------------------------
step "pkg-config example (PKG_CONFIG_PATH=$libdir/pkgconfig)"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pc_version=$(pkg-config --modversion mbx) || die "pkg-config does not find mbx"
[[ $pc_version == "$version" ]] || die "mbx.pc Version $pc_version != $version"
pc_incdir=$(pkg-config --cflags-only-I mbx | tr ' ' '\n' | sed -n 's/^-I//p' | head -n1)
[[ -n $pc_incdir && $(readlink -f "$pc_incdir") == $(readlink -f "$prefix/$incdir_rel") ]] ||
  die "pkg-config --cflags mbx does not point at $prefix/$incdir_rel: $(pkg-config --cflags mbx)"
# shellcheck disable=SC2046  # word splitting of the flags is intended
"$CC" -std=c99 -Wall -Wextra "${extra_flags[@]}" -o "$tmp/pkgconfig_example" \
      "$examples/pkgconfig_example.c" $(pkg-config --cflags --libs mbx) -lm ||
  die "pkg-config example: compile"
uses_installed_lib "$tmp/pkgconfig_example"
"$tmp/pkgconfig_example" | tee "$tmp/pkgconfig.out" || die "pkg-config example: run"

# ---------------------------------------------------------------------------
step "dlopen example (-ldl only)"
"$CC" -std=c99 -Wall -Wextra "${extra_flags[@]}" -I"$prefix/$incdir_rel" -o "$tmp/dlopen_example" \
      "$examples/dlopen_example.c" -ldl -lm || die "dlopen example: compile"
if readelf -d "$tmp/dlopen_example" | grep -q 'NEEDED.*libmbx'; then
  die "dlopen_example has a link-time dependency on libmbx"
fi
LD_LIBRARY_PATH='' "$tmp/dlopen_example" "$libdir/libmbx.so.$major" | tee "$tmp/dlopen.out" ||
  die "dlopen example: run with an explicit path"
"$tmp/dlopen_example" >"$tmp/dlopen-search.out" || die "dlopen example: run via the search path"
diff <(grep '^RESULT' "$tmp/dlopen.out") <(grep '^RESULT' "$tmp/dlopen-search.out") ||
  die "dlopen example: explicit path and search path give different results"
if LD_LIBRARY_PATH='' "$tmp/dlopen_example" "$tmp/no-such-libmbx.so.0" >/dev/null 2>&1; then
  die "dlopen example succeeded on a missing library"
fi
echo "ok: no DT_NEEDED on libmbx; explicit path == search path; missing library reported"

# ---------------------------------------------------------------------------
step "compare results"
# Prints "<field>=<value>" lines of a RESULT line; checks every value is finite.
fields() {  # <file> <batch>
  local line
  line=$(grep "^RESULT $2 " "$1") || die "$1: no 'RESULT $2' line"
  [[ $(grep -c "^RESULT $2 " "$1") == 1 ]] || die "$1: several 'RESULT $2' lines"
  echo "$line" | tr ' ' '\n' | grep '=' | awk -F= -v f="$1" '
    { v = $2 + 0; if ($2 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ || v != v) { print "non-finite " $0 " in " f > "/dev/stderr"; exit 1 } print }'
}
# Same keys; numbers equal to 1e-6 relative (positives exactly).
agree() {  # <file-a> <file-b> <batch>
  paste -d' ' <(fields "$1" "$3") <(fields "$2" "$3") | awk -v a="$1" -v b="$2" '
    { split($1, x, "="); split($2, y, "=");
      if (x[1] != y[1]) { print "field mismatch " x[1] " vs " y[1]; bad = 1; next }
      d = x[2] - y[2]; if (d < 0) d = -d; m = (x[2] < 0 ? -x[2] : x[2]);
      tol = (x[1] == "num_pos") ? 0 : 1e-6 * (m > 1e-12 ? m : 1e-12);
      if (d > tol) { print x[1] ": " x[2] " (" a ") vs " y[2] " (" b ")"; bad = 1 } }
    END { exit bad }' || die "$1 and $2 disagree on $3"
}
fields "$tmp/dlopen.out" batch2 >/dev/null
agree "$tmp/consumer.out" "$tmp/pkgconfig.out" batch1
agree "$tmp/consumer.out" "$tmp/dlopen.out" batch1
if [[ $(fields "$tmp/dlopen.out" batch1) == "$(fields "$tmp/dlopen.out" batch2)" ]]; then
  die "the two-image batch gives exactly the one-image results"
fi
echo "ok: consumer (fused), pkg-config (forward + backward) and dlopen (fused) agree on batch1; batch2 finite"

echo
echo "test_install: PASS (mbx $version, prefix layout $libdir_rel / $incdir_rel)"
