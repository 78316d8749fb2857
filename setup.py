"""The one compiled piece: ``teeprover._native`` (see teeprover/_native.c for what and why).

Everything else about the package is in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("teeprover._native", ["teeprover/_native.c"], extra_compile_args=["-O3"])])
