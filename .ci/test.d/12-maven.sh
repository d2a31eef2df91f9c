# Maven jar: `mvn -o install` of CI's build tree ($1, CUDA-enabled when
# nvcc exists) into a private local repository, as the README's Install
# section does it (JUnit suite included: CPU use unchanged), then checks the
# installed jar: version, bundled natives, .nv_fatbin in its libmbx when the
# build has CUDA. Maven's outputs go to build-ci-maven/, not into $1.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$root/build-ci-maven"
pom="$build/bindings/java/pom.xml"
[ -f "$pom" ] || { echo "no $pom (configure with -DMBX_ENABLE_JAVA=ON)" >&2; exit 1; }
version=$(sed -n 's/^project( *mbx  *VERSION  *\([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
rm -rf "$work"
mkdir -p "$work"
mvn -o -B -q -s "$root/packaging/maven/settings-offline.xml" -Daether.offline.protocols=file \
  -Dmaven.repo.local="$work/m2" \
  -Dmbx.maven.target="$work/target" -f "$pom" install
grep -ho 'tests="[0-9]*" errors="[0-9]*" skipped="[0-9]*" failures="[0-9]*"' \
  "$work"/target/surefire-reports/TEST-*.xml | sed 's/^/JUnit: /'
jar="$work/m2/org/mbx/mbx/$version/mbx-$version.jar"
[ -f "$jar" ] || { echo "not installed: $jar" >&2; exit 1; }
[ -f "$work/m2/org/mbx/mbx/$version/mbx-$version.pom" ] || { echo "pom not installed" >&2; exit 1; }
mkdir "$work/jar"
(cd "$work/jar" && jar xf "$jar")
natives="$work/jar/org/mbx/native/linux-x86_64"
for f in libmbx.so.0 libmbx_jni.so mbx-natives.txt; do
  [ -f "$natives/$f" ] || { echo "jar lacks org/mbx/native/linux-x86_64/$f" >&2; exit 1; }
done
grep -q "Implementation-Version: $version" "$work/jar/META-INF/MANIFEST.MF"
if grep -q '^MBX_ENABLE_CUDA:BOOL=ON' "$build/CMakeCache.txt"; then
  # (Whole output into grep: with pipefail, grep -q closing a pipe early fails it.)
  grep -q '\.nv_fatbin' <<<"$(readelf -S -W "$natives/libmbx.so.0")" \
    || { echo "the jar's libmbx has no CUDA code" >&2; exit 1; }
  cuda="with CUDA ($(strings -a "$natives/libmbx.so.0" | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' '))"
else
  cuda="CPU-only (build without CUDA)"
fi
echo "installed $jar ($(stat -c %s "$jar") bytes), libmbx $cuda"
