"""Builds the mbx wheel (and sdist) by running the project's CMake.

build_ext configures the project with -DMBX_ENABLE_PYTHON=ON in a CMake
build tree outside the source folders, builds the SWIG module (which pulls in
libmbx) and the JAX shim, and installs CMake's "python" component (mbx/*.py,
*.pyi, py.typed, mbx_native.py, _mbx_native.abi3.so and libmbx_jax.so with
RUNPATH $ORIGIN, libmbx.so.<major>) into setuptools' build_lib, which
bdist_wheel packs.

The extension is built against CPython's limited API (Py_LIMITED_API 3.9,
SWIG >= 4.2): one cp39-abi3 wheel serves CPython 3.9 and every later 3.x.

The project sources: in a git checkout, the repository two folders up; in
the sdist, its src/ folder (the sdist command copies the project's tracked
files there).

Environment:
  MBX_ENABLE_CUDA         ON / OFF; unset: CMake's default (ON when nvcc is found)
  MBX_CUDA_ARCHITECTURES  CMAKE_CUDA_ARCHITECTURES (unset: the project's default)
  MBX_WHEEL_LIBMBX        package this prebuilt libmbx.so.<major> (same sources and
                          version, e.g. the CUDA build of CI's build tree) instead
                          of the one built here; the build here is then CPU-only
                          unless MBX_ENABLE_CUDA says otherwise
  MBX_PYTHON_LIMITED_API  Py_LIMITED_API value (default 0x03090000); "OFF": a
                          module for the building interpreter only
  MBX_WHEEL_BUILD_DIR     CMake build tree (default <src>/build-wheel/cmake)
  MBX_WHEEL_SCRATCH       setuptools' scratch (default <src>/build-wheel)
  CMAKE_BUILD_PARALLEL_LEVEL  build jobs (default 2)
  CMAKE_GENERATOR         default Ninja if ninja is on PATH
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
# In the sdist the project sources sit in src/; in the repository, two up.
if os.path.exists(os.path.join(HERE, "src", "CMakeLists.txt")):
    REPO = os.path.join(HERE, "src")
else:
    REPO = os.path.dirname(os.path.dirname(HERE))
# setuptools' own scratch (build/, egg-info) also goes outside the source tree.
SCRATCH = os.path.abspath(os.environ.get("MBX_WHEEL_SCRATCH") or os.path.join(REPO, "build-wheel"))
os.makedirs(SCRATCH, exist_ok=True)

LIMITED_API = os.environ.get("MBX_PYTHON_LIMITED_API", "0x03090000")
if LIMITED_API.upper() in ("", "OFF", "0", "NO", "FALSE"):
    LIMITED_API = ""
# Py_LIMITED_API 0x030900f0 -> wheel tag cp39.
ABI3_TAG = "cp3%d" % int(LIMITED_API[4:6], 16) if LIMITED_API else None

# What the sdist carries of the project (beside this folder's files): all
# the wheel's CMake build needs, nothing of the tests but the conformance
# runner that every build configures.
SDIST_PATHS = ["CMakeLists.txt", "capi", "core", "bindings/CMakeLists.txt", "bindings/mbx.i",
               "bindings/python", "bindings/jax", "packaging/CMakeLists.txt", "packaging/cmake",
               "packaging/pkgconfig", "tests/golden", "tests/common", "docs/SPEC.md"]


def read_version():
    """The project's one version number: project(mbx VERSION x.y.z) in the
    top-level CMakeLists.txt (mbx_version.h and the jar take it from there)."""
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"project\(\s*mbx\s+VERSION\s+(\d+\.\d+\.\d+)", f.read()).group(1)


def find_swig():
    """SWIG next to the building interpreter (a venv's or the build
    environment's `swig` from PyPI), else the first on PATH."""
    bindir = os.path.dirname(sys.executable)
    return shutil.which("swig", path=bindir + os.pathsep + os.environ.get("PATH", ""))


def check_prebuilt_libmbx(path, version):
    """A prebuilt libmbx must be this project's, at this version."""
    lib = ctypes.CDLL(os.path.abspath(path))
    lib.mbx_version.restype = ctypes.c_char_p
    got = lib.mbx_version().decode()
    if got != version:
        raise SystemExit("MBX_WHEEL_LIBMBX=%s is mbx %s, this source tree is %s" % (path, got, version))


class CMakeBuild(build_ext):
    """Builds and installs the whole package with CMake."""

    def build_extension(self, ext):
        build_dir = os.path.abspath(os.environ.get("MBX_WHEEL_BUILD_DIR") or os.path.join(SCRATCH, "cmake"))
        os.makedirs(build_dir, exist_ok=True)
        prebuilt = os.environ.get("MBX_WHEEL_LIBMBX")
        cuda = os.environ.get("MBX_ENABLE_CUDA") or ("OFF" if prebuilt else "")
        cfg = [
            "cmake", "-S", REPO, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DMBX_ENABLE_PYTHON=ON",
            "-DMBX_ENABLE_JAX=ON",
            "-DMBX_ENABLE_JAVA=OFF",
            "-DMBX_ENABLE_CSHARP=OFF",
            "-DMBX_BUILD_TESTS=OFF",
            "-DMBX_BUILD_BENCHMARKS=OFF",
            "-DPython3_EXECUTABLE=" + sys.executable,
            "-DMBX_PYTHON_INSTALL_DIR=mbx",
            "-DMBX_PYTHON_LIMITED_API=" + LIMITED_API,
            # libgcc's arithmetic helpers from libgcc.a (searched before the
            # compiler's -lgcc_s): the JAX shim's float16 conversions
            # (__truncsfhf2, GCC_12.0.0 in libgcc_s) would otherwise raise the
            # wheel's manylinux tag above what glibc requires. (-static-libgcc
            # would also bring GCC 12's unwinder, which needs glibc 2.35.)
            "-DCMAKE_CXX_STANDARD_LIBRARIES=-lgcc",
        ]
        if cuda:
            cfg.append("-DMBX_ENABLE_CUDA=" + cuda)
        if os.environ.get("MBX_CUDA_ARCHITECTURES"):
            cfg.append("-DCMAKE_CUDA_ARCHITECTURES=" + os.environ["MBX_CUDA_ARCHITECTURES"])
        swig = find_swig()
        if swig:
            cfg.append("-DSWIG_EXECUTABLE=" + swig)
        if "CMAKE_GENERATOR" not in os.environ and shutil.which("ninja") and not os.path.exists(
                os.path.join(build_dir, "CMakeCache.txt")):
            cfg += ["-G", "Ninja"]
        subprocess.check_call(cfg)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "mbx_python", "mbx_jax",
                               "-j", jobs])
        prefix = os.path.abspath(self.build_lib)
        subprocess.check_call(["cmake", "--install", build_dir, "--component", "python",
                               "--prefix", prefix])
        pkg = os.path.join(prefix, "mbx")
        if prebuilt:
            version = read_version()
            check_prebuilt_libmbx(prebuilt, version)
            target = os.path.join(pkg, "libmbx.so." + version.split(".")[0])
            shutil.copyfile(prebuilt, target)
            print("packaging the prebuilt %s as %s" % (prebuilt, target))
        # Drop anything stale from an earlier build of another Python.
        tag = os.path.basename(self.get_ext_fullpath(ext.name)).split(".", 1)[1]
        for name in os.listdir(pkg):
            if name.startswith("_mbx_native.") and not name.endswith(tag):
                os.remove(os.path.join(pkg, name))


class NoPyBuild(build_py):
    """The Python files come from the CMake install (one source of truth)."""

    def run(self):
        pass

    def get_source_files(self):
        return []  # the sdist carries them under src/ (MbxSdist)

    # Nor package data (py.typed, *.pyi): the sdist would otherwise copy them
    # to <release tree>/<package_dir>, outside the tree.
    def _get_data_files(self):
        return []

    def get_data_files_without_manifest(self):
        return []


def project_files():
    """The project files the sdist carries (relative to REPO): git's tracked
    files under SDIST_PATHS, or every file there outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard", "--"] + SDIST_PATHS,
                             check=True, capture_output=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for top in SDIST_PATHS:
            if os.path.isfile(os.path.join(REPO, top)):
                files.append(top)
            for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, top)):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                files += [os.path.relpath(os.path.join(dirpath, n), REPO) for n in filenames]
    return sorted(f for f in files if os.path.isfile(os.path.join(REPO, f)))


class MbxSdist(sdist):
    """The sdist: this folder's setup.py, pyproject.toml, README.md and build
    backend, plus the project sources under src/ (REPO of the build)."""

    def make_release_tree(self, base_dir, files):
        # Only files of this folder: the package sources are under src/.
        files = [f for f in files if not os.path.normpath(f).startswith("..")]
        super().make_release_tree(base_dir, files)
        for rel in project_files():
            dst = os.path.join(base_dir, "src", rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), dst)


options = {
    "build": {"build_base": os.path.join(SCRATCH, "setuptools")},
    "egg_info": {"egg_base": SCRATCH},
}
if ABI3_TAG:
    options["bdist_wheel"] = {"py_limited_api": ABI3_TAG}

setup(
    name="mbx",
    version=read_version(),
    packages=["mbx"],
    package_dir={"mbx": os.path.relpath(os.path.join(REPO, "bindings", "python", "mbx"), HERE)},
    ext_modules=[Extension("mbx._mbx_native", sources=[], py_limited_api=bool(LIMITED_API))],
    cmdclass={"build_ext": CMakeBuild, "build_py": NoPyBuild, "sdist": MbxSdist},
    zip_safe=False,
    options=options,
)
