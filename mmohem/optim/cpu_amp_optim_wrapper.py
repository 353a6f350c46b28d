"""Mixed-precision training on a CPU, where mmengine's AmpOptimWrapper
refuses to run."""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from ..registry import register_optim_wrapper


@register_optim_wrapper
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast('cpu')``.

    mmengine 0.10's ``AmpOptimWrapper`` asserts a CUDA, NPU, MLU or MUSA
    device. On a CPU, torch 2.1 autocasts to bfloat16 only; bfloat16 has
    float32's exponent range, so no loss scaling is needed and the update
    is ``OptimWrapper``'s. ``tools/train.py --amp`` selects this wrapper on
    a machine without CUDA. Takes ``OptimWrapper``'s arguments
    (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """``OptimWrapper.optim_context`` inside a bfloat16 CPU autocast."""
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield
