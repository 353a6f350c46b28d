"""Counting the points where a step waits for the device.

On CUDA, torch's sync debug mode warns at each synchronising call and the
warnings are counted. On the CPU nothing waits, so the same places are
counted by what they do: the tensor operations that read a value back to
the host or whose output size depends on the data (``item``, ``tolist``,
``bool()``, ``int()``, ``nonzero``, boolean-mask indexing, ...). The CPU
count does not see the waits inside an operation's CUDA kernels (mmcv's
CUDA ``nms`` reads its mask on the host, for one): on an H200 the CUDA
count of each miner step was 3 higher than the CPU count (5, 6, 7 against
2, 3, 4), the pixel step, which has no NMS, included.
"""
import warnings
from typing import Any, Callable, Dict, List

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

#: What sync debug mode's warning of one synchronising call says.
CUDA_SYNC_WARNING = 'called a synchronizing CUDA operation'

_READS = {
    Tensor.item, Tensor.tolist, Tensor.__bool__, Tensor.__int__,
    Tensor.__float__, Tensor.__index__, Tensor.nonzero, torch.nonzero,
    Tensor.masked_select, torch.masked_select, Tensor.numpy, Tensor.cpu,
    torch.unique, Tensor.unique, torch.where
}


class _HostReads(TorchFunctionMode):
    """Records the host reads of the tensor operations run inside it.

    Torch function modes do not see ``Tensor.__getitem__`` in torch 2.1,
    so boolean-mask reads are caught by wrapping it for the duration.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: List[str] = []
        self._getitem = Tensor.__getitem__

    def __enter__(self) -> '_HostReads':
        real = self._getitem

        def getitem(tensor: Tensor, index: Any) -> Tensor:
            if _bool_index(index):
                self.calls.append('__getitem__[bool mask]')
            return real(tensor, index)

        Tensor.__getitem__ = getitem
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        Tensor.__getitem__ = self._getitem
        super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', '')
        if func in _READS and not (func is torch.where and len(args) > 1):
            self.calls.append(name)
        elif name == '__setitem__' and _bool_index(args[1]):
            self.calls.append('__setitem__[bool mask]')
        return func(*args, **kwargs)


def _bool_index(index: Any) -> bool:
    """Whether an index holds a boolean tensor (a data-dependent size)."""
    parts = index if isinstance(index, tuple) else (index, )
    return any(torch.is_tensor(p) and p.dtype == torch.bool for p in parts)


def cuda_sync_calls(messages: List[str]) -> List[str]:
    """The first lines of the warnings of sync debug mode that report a
    synchronising call; torch's one-off notice that the mode is a
    prototype (which also says "synchronizing") is not one."""
    return [m.splitlines()[0] for m in messages if CUDA_SYNC_WARNING in m]


def count_host_syncs(step: Callable[[], Any], device: str) -> Dict:
    """Run ``step`` once and count where it waits for ``device``.

    Args:
        step (callable): The work to examine.
        device (str): ``'cuda'`` (sync debug mode) or ``'cpu'`` (host
            reads, see the module docstring).

    Returns:
        dict: ``count`` and ``calls`` (what each wait was, in order).
    """
    if device == 'cuda':
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            try:
                step()
            finally:
                torch.cuda.set_sync_debug_mode('default')
        calls = cuda_sync_calls([str(w.message) for w in caught])
        return dict(count=len(calls), calls=calls)
    with _HostReads() as reads:
        step()
    return dict(count=len(reads.calls), calls=reads.calls)


def miner_host_syncs(device: str) -> Dict[str, Dict]:
    """Host synchronisations of one step of each miner on ``device``.

    The steps: ``mine_hard_examples`` for one image of 2000 candidates
    (what the RoI sampler runs per image), the same for a batch of 8 SSD
    images of 8732 anchors, and the OHEM pixel selection of a batch
    (sampler flavour) at 8x19x128x256.

    Args:
        device (str): ``'cuda'`` or ``'cpu'``.

    Returns:
        dict: Per step, :func:`count_host_syncs`'s result.
    """
    from mmohem.mining import hard_pixel_mask, mine_hard_examples
    from .agreement import random_candidates, random_pixels

    steps = {}
    for name, (images, cands, num) in {
            'RoI image (1x2000, keep 512)': (1, 2000, 512),
            'SSD batch (8x8732, keep 64)': (8, 8732, 64)
    }.items():
        case = random_candidates(images, cands, device, seed=0)
        steps[name] = (lambda case=case, num=num: mine_hard_examples(
            case['losses'], case['valid'], case['is_pos'], case['boxes'], num,
            0.7, case['labels']))
    logits, labels = random_pixels((8, 19, 128, 256), device, seed=0)
    steps['pixels (8x19x128x256)'] = lambda: hard_pixel_mask(
        logits, labels, thresh=0.7, min_kept=8 * 10000)
    return {
        name: count_host_syncs(step, device)
        for name, step in steps.items()
    }
