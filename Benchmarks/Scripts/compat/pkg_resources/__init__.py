"""The three names pyautoupdate 1.0.0 takes from pkg_resources, for today's Python.

pyautoupdate imports `SetuptoolsVersion` (gone from setuptools since 39) and an old setuptools
does not run on Python 3.11; `make bench` puts this folder first on PYTHONPATH so that the
original can be measured as it is.
"""
import os

from packaging.version import Version as SetuptoolsVersion, parse as parse_version


class PEP440Warning(RuntimeWarning):
    pass


def ensure_directory(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
