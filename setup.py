"""Builds Chatswarm's one compiled module, core/_speedups.c (the streaming hot path's reads), in place.

``pip install -r requirements.txt`` runs it (requirements.txt installs this folder in editable mode). Without a C
compiler the module is skipped and the same code runs in Python (core/speedups.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("core._speedups", ["core/_speedups.c"], optional=True, extra_compile_args=["-O2"])],
)
