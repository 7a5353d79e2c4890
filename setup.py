"""setuptools cannot take `cffi_modules` from pyproject.toml alone; this is the one line it needs."""

from setuptools import setup

setup(cffi_modules=["cext/build_dsp.py:ffibuilder"])
