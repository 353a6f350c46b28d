"""Release checks that need a GPU to mean much, runnable on a CPU too.

``tools/gpu_check.py`` runs them on CUDA (``tools/gpu_check.sh`` sets that
up); the test suite runs them on the CPU at small sizes. Each returns plain
data for the check's JSON and Markdown report.
"""
from .agreement import mining_agreement
from .amp_grads import (amp_gradient_check, roi_head_grads,
                        rpn_nms_in_one_call, set_sampler, small_detector)
from .host_syncs import count_host_syncs, miner_host_syncs
from .nms_memory import nms_memory

__all__ = [
    'amp_gradient_check', 'count_host_syncs', 'miner_host_syncs',
    'mining_agreement', 'nms_memory', 'roi_head_grads', 'rpn_nms_in_one_call',
    'set_sampler', 'small_detector'
]
