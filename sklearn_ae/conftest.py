"""Doctest collection for the package: skip modules whose optional extra is not installed."""

import importlib.util

collect_ignore = ["__main__.py"]
if importlib.util.find_spec("dask") is None:
    collect_ignore.append("_dask.py")
