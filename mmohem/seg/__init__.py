"""Segmentation part of mmohem (needs mmsegmentation)."""
from mmohem.registry import has_package

if not has_package('mmseg'):
    raise ImportError(
        "mmohem.seg needs mmsegmentation: pip install 'mmsegmentation>=1.0.0,<1.3.0'")

__all__ = []
