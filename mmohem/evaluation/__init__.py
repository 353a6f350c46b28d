"""Metrics of what OHEM claims to change: false positives on the
unlabelled distractors (detection and segmentation)."""
from mmohem.registry import has_package
from .distractors import (Distractors, count_distractor_hits,
                          distractor_pixels_claimed)

__all__ = ['Distractors', 'count_distractor_hits', 'distractor_pixels_claimed']

if has_package('mmdet'):
    from .distractor_fp_metric import DistractorFPMetric  # noqa: F401
    __all__.append('DistractorFPMetric')
if has_package('mmseg'):
    from .distractor_pixel_metric import DistractorPixelMetric  # noqa: F401
    __all__.append('DistractorPixelMetric')
