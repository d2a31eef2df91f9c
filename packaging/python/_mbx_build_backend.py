"""setuptools' build backend, plus cmake / ninja from PyPI as build
requirements when the machine has none (or a cmake older than 3.18)."""

import re
import shutil
import subprocess

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (the PEP 517 hooks)


def _cmake_ok():
    exe = shutil.which("cmake")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return False
    m = re.search(r"(\d+)\.(\d+)", out)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (3, 18)


def _tools():
    need = []
    if not _cmake_ok():
        need.append("cmake>=3.18")
    if not shutil.which("ninja"):
        need.append("ninja")
    return need


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _tools()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _tools()
