"""Segmentation part of mmohem (needs mmsegmentation)."""
from mmohem.registry import has_package

if not has_package('mmseg'):
    raise ImportError('mmohem.seg needs mmsegmentation: '
                      "pip install 'mmsegmentation>=1.0.0,<1.3.0'")

from .mmseg_ohem_loss import MMSegOhemCrossEntropy  # noqa: E402
from .ohem_cross_entropy import OhemCrossEntropyLoss  # noqa: E402
from .ohem_cross_entropy import OhemCrossEntropySampler, OhemRule

__all__ = [
    'MMSegOhemCrossEntropy', 'OhemCrossEntropyLoss', 'OhemCrossEntropySampler',
    'OhemRule'
]
