"""Memory and time of the loss-based NMS over a large batch of boxes."""
from typing import Dict, List, Sequence

import torch

from mmohem.benchmark.timing import now
from mmohem.mining import NMS_CHUNK, loss_nms
from .agreement import random_candidates


def nms_memory(sizes: Sequence[int],
               device: str,
               images: int = 8) -> List[Dict]:
    """Peak memory and time of :func:`loss_nms` over ``size`` boxes.

    Each size is a batch of ``images`` images of ``size // images`` valid
    boxes (an SSD512 batch of 8 holds about 200k anchors), per label,
    through ``loss_nms`` as mmohem runs it (chunks of ``NMS_CHUNK`` boxes)
    and in one call of every box (as before the chunks, for comparison).

    Args:
        sizes (Sequence[int]): Numbers of boxes.
        device (str): ``'cuda'`` (peak CUDA allocation above the memory
            before the call is reported) or ``'cpu'`` (time only).
        images (int): Images the boxes are spread over.

    Returns:
        list[dict]: ``boxes``, ``mode``, ``peak_mib`` (None on the CPU),
        ``ms`` and ``survivors`` per size and mode.
    """
    rows = []
    for size in sizes:
        case = random_candidates(images, size // images, device, seed=3)
        case['valid'][:] = True
        for mode, max_boxes in (('chunked', NMS_CHUNK), ('one call', size)):
            if device == 'cuda':
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            start = now()
            survive = loss_nms(case['boxes'], case['losses'], case['valid'],
                               0.7, case['labels'], max_boxes)
            elapsed = now() - start
            peak = None
            if device == 'cuda':
                peak = (torch.cuda.max_memory_allocated() - base) / 2**20
            rows.append(
                dict(
                    boxes=size,
                    mode=mode,
                    peak_mib=peak,
                    ms=1000 * elapsed,
                    survivors=int(survive.sum())))
    return rows
