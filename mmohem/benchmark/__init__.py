"""Baseline-vs-OHEM benchmark: run pairs of configs, read their logs, report.

Used by ``tools/benchmark.py``. The modules import mmengine and matplotlib
only where needed; :mod:`.pairs` (which reads configs and the registries)
imports mmohem's registries.
"""
