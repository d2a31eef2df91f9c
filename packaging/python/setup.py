"""Builds the mbx wheel by running the project's CMake.

build_ext configures <repo> with -DMBX_ENABLE_PYTHON=ON in a CMake build
tree outside this folder (MBX_WHEEL_BUILD_DIR, default <repo>/build-wheel),
builds the SWIG module (which pulls in libmbx), and installs CMake's
"python" component (mbx/*.py, mbx_native.py, _mbx_native.*.so with RUNPATH
$ORIGIN, libmbx.so.<major>) into setuptools' build_lib, which bdist_wheel
packs. Environment:
  MBX_WHEEL_BUILD_DIR     CMake build tree (default <repo>/build-wheel/cmake)
  MBX_ENABLE_CUDA         ON to build the CUDA path too (default OFF)
  CMAKE_BUILD_PARALLEL_LEVEL  build jobs (default 2)
  CMAKE_GENERATOR         default Ninja if ninja is on PATH
"""

import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# setuptools' own scratch (build/, egg-info) also goes outside the source tree.
SCRATCH = os.path.join(REPO, "build-wheel")
os.makedirs(SCRATCH, exist_ok=True)


def read_version():
    """The project's one version number: project(mbx VERSION x.y.z) in the
    top-level CMakeLists.txt (mbx_version.h and the jar take it from there)."""
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"project\(\s*mbx\s+VERSION\s+(\d+\.\d+\.\d+)", f.read()).group(1)


class CMakeBuild(build_ext):
    """Builds and installs the whole package with CMake."""

    def build_extension(self, ext):
        build_dir = os.environ.get("MBX_WHEEL_BUILD_DIR", os.path.join(SCRATCH, "cmake"))
        os.makedirs(build_dir, exist_ok=True)
        cfg = [
            "cmake", "-S", REPO, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DMBX_ENABLE_PYTHON=ON",
            "-DMBX_ENABLE_JAVA=OFF",
            "-DMBX_ENABLE_CSHARP=OFF",
            "-DMBX_BUILD_TESTS=OFF",
            "-DMBX_ENABLE_CUDA=" + os.environ.get("MBX_ENABLE_CUDA", "OFF"),
            "-DPython3_EXECUTABLE=" + sys.executable,
            "-DMBX_PYTHON_INSTALL_DIR=mbx",
        ]
        if "CMAKE_GENERATOR" not in os.environ and shutil.which("ninja") and not os.path.exists(
                os.path.join(build_dir, "CMakeCache.txt")):
            cfg += ["-G", "Ninja"]
        subprocess.check_call(cfg)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "mbx_python", "-j", jobs])
        prefix = os.path.abspath(self.build_lib)
        subprocess.check_call(["cmake", "--install", build_dir, "--component", "python",
                               "--prefix", prefix])
        # Drop anything stale from an earlier build of another Python.
        pkg = os.path.join(prefix, "mbx")
        tag = os.path.basename(self.get_ext_fullpath(ext.name)).split(".", 1)[1]
        for name in os.listdir(pkg):
            if name.startswith("_mbx_native.") and not name.endswith(tag):
                os.remove(os.path.join(pkg, name))


class NoPyBuild(build_py):
    """The Python files come from the CMake install (one source of truth)."""

    def run(self):
        pass


setup(
    name="mbx",
    version=read_version(),
    packages=["mbx"],
    package_dir={"mbx": os.path.relpath(os.path.join(REPO, "bindings", "python", "mbx"), HERE)},
    ext_modules=[Extension("mbx._mbx_native", sources=[])],
    cmdclass={"build_ext": CMakeBuild, "build_py": NoPyBuild},
    zip_safe=False,
    options={
        "build": {"build_base": os.path.join(SCRATCH, "setuptools")},
        "egg_info": {"egg_base": SCRATCH},
    },
)
