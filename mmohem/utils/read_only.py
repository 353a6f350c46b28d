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


@contextmanager
def kept_buffers(module: nn.Module) -> Iterator[None]:
    """Restore every buffer of ``module`` to its value on entry.

    For a pass that calls modules which update their state whatever their
    mode: mmdet's ``GHMC`` and ``GHMR`` losses move their running bin
    counts at each call, so a measurement that calls them would change what
    the next training step weights its examples with. One copy of each
    buffer is held for the duration.
    """
    saved = [(b, b.clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
