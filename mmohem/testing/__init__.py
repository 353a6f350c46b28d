"""Test support, as ``mmdet.testing``: the cases and counters that the test
suite runs on the CPU at small sizes and ``tools/gpu_check.py`` runs on CUDA.

Each check returns plain data for the GPU check's JSON and Markdown report.
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
