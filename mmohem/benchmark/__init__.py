"""OHEM benchmark: run experiments (a baseline config and its peers, the
arms), read their logs, report each arm against the baseline.

Used by ``tools/benchmark.py``. The modules import mmengine and matplotlib
only where needed; :mod:`.pairs` (which reads configs and the registries)
imports mmohem's registries.
"""
