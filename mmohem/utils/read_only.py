"""The read-only pass: a forward that changes nothing a training step
uses."""
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


@contextmanager
def read_only(module: nn.Module) -> Iterator[None]:
    """Run ``module`` without gradient, in eval mode and with autocast's
    weight cache off, restoring each submodule's mode and the cache after.

    Autocast caches the low-precision copy of a weight at its first use in
    the region. A copy made here, without gradient, would be reused by the
    training forward of the same module, whose weights would then get no
    gradient; with the cache off the copy is made afresh and dropped.
    """
    modes = [(m, m.training) for m in module.modules()]
    cache = torch.is_autocast_cache_enabled()
    module.eval()
    torch.set_autocast_cache_enabled(False)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_autocast_cache_enabled(cache)
        for m, training in modes:
            m.training = training
