"""Mixed-precision training on a CPU, where mmengine's AmpOptimWrapper
refuses to run."""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn
from torch.optim import Optimizer

from ..registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast('cpu')``.

    mmengine 0.10's ``AmpOptimWrapper`` asserts a CUDA, NPU, MLU or MUSA
    device. On a CPU, torch 2.1 autocasts to bfloat16 only; bfloat16 has
    float32's exponent range, so no loss scaling is needed and the update
    is ``OptimWrapper``'s. ``tools/train.py --amp`` selects this wrapper on
    a machine without CUDA. Takes ``OptimWrapper``'s arguments
    (``optimizer``, ``accumulative_counts``, ``clip_grad``).

    Parameters on another device are refused: a CPU autocast does not
    reach them, and they would train in float32 without a word.
    """

    cast_dtype = torch.bfloat16

    def __init__(self, optimizer: Optimizer, **kwargs) -> None:
        super().__init__(optimizer, **kwargs)
        devices = sorted({
            str(p.device)
            for group in optimizer.param_groups
            for p in group['params'] if p.device.type != 'cpu'
        })
        if devices:
            raise ValueError(
                f'mmohem.CPUAmpOptimWrapper autocasts on the CPU only, but '
                f'the optimizer holds parameters on {", ".join(devices)}, '
                'which would train in float32; use '
                "optim_wrapper=dict(type='AmpOptimWrapper', ...) there.")

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """``OptimWrapper.optim_context`` inside a bfloat16 CPU autocast."""
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield
