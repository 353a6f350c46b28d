"""OHEM benchmark: run experiments (a baseline config and its peers, the
arms), read their logs, report each arm against the baseline with the
provenance of the result.

Used by ``tools/benchmark.py``. The modules import mmengine and matplotlib
only where needed.
"""
