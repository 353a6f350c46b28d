"""Counting the device work of one step: launched operations and host reads.

A GPU launches at least one kernel for each tensor operation that computes
something, at a few microseconds apiece, and every host read drains its
queue. Both can be counted on a CPU, where the same Python code dispatches
the same operations:

* ``ops``: the aten operations dispatched (a ``TorchDispatchMode``), less
  views (their result aliases an input: ``view``, ``slice``, ``expand``,
  ``detach``, ...) and bare allocations (``empty``), which launch nothing.
  A call into mmcv's compiled extension (``nms``, ``roi_align_forward``,
  ...) is one operation, whatever it runs inside, as a dispatched operator
  such as ``torchvision::nms`` is.
* ``host_reads``: the calls that read a value back to the host or whose
  output size depends on the data (:mod:`mmohem.testing.host_syncs`).

On CUDA, :func:`count_launches` also takes the profiler's count of the
kernels that ran (``kernels``), which includes what a composite kernel or an
extension launches inside.
"""
import functools
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from torch.utils._python_dispatch import (TorchDispatchMode,
                                          _disable_current_modes)

from .host_syncs import _HostReads

#: Operations that allocate or re-label memory without computing: no
#: kernel runs (``_unsafe_view`` is a view that autograd does not track).
NO_KERNEL = frozenset(
    ('aten::empty.memory_format', 'aten::empty_strided', 'aten::new_empty',
     'aten::new_empty_strided', 'aten::_unsafe_view'))
# Read back to the host: counted as a host read, not as an operation.
_HOST_COPY = 'aten::_local_scalar_dense'


def launches_kernel(func) -> bool:
    """Whether a dispatched aten operation computes (launches a kernel on
    a GPU): not a view, not a bare allocation, not a scalar read.

    Args:
        func (OpOverload): The operation.
    """
    name = func._schema.name + (f'.{func._overloadname}'
                                if func._overloadname != 'default' else '')
    if name in NO_KERNEL or func._schema.name == _HOST_COPY:
        return False
    if func._schema.name == 'aten::lift_fresh':
        return True  # a constant made on the host: an upload on a GPU
    returns = func._schema.returns
    views = [
        r.alias_info is not None and not r.alias_info.is_write for r in returns
    ]
    return not (returns and all(views))


class _Operations(TorchDispatchMode):
    """Records the name of each dispatched operation that launches."""

    def __init__(self) -> None:
        super().__init__()
        self.names: List[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if launches_kernel(func):
            self.names.append(str(func.overloadpacket).replace('aten.', ''))
        return func(*args, **(kwargs or {}))


@contextmanager
def _extension_calls(names: List[str]) -> Iterator[None]:
    """Count each call into mmcv's compiled extension as one operation,
    without the aten operations it dispatches inside (an extension kernel
    runs them on the host or fuses them on a GPU)."""
    try:
        from mmcv.utils import ext_loader
        ext = ext_loader.load_ext('_ext', [])
    except Exception:  # no mmcv, or mmcv without ops: nothing to wrap
        yield
        return
    originals = {
        name: fn
        for name, fn in vars(ext).items()
        if callable(fn) and not name.startswith('_')
    }

    def wrap(name: str, fn: Callable) -> Callable:

        @functools.wraps(fn)
        def call(*args, **kwargs):
            names.append(f'mmcv.{name}')
            with _disable_current_modes():
                return fn(*args, **kwargs)

        return call

    for name, fn in originals.items():
        setattr(ext, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(ext, name, fn)


def count_launches(step: Callable[[], Any],
                   device: Optional[str] = None) -> Dict:
    """Run ``step`` twice and count the launched operations and host reads
    of the second run: the steady state of a training loop, without what a
    first call sets up once (a constant uploaded and cached).

    Args:
        step (callable): The work to examine. A step with a ``prepare``
            method (that resets what a run changes) has it called before
            each run, outside what is counted.
        device (str, optional): ``'cuda'`` also runs the step a second time
            under the profiler and reports the kernels that ran.

    Returns:
        dict: ``ops`` (int), ``host_reads`` (int), ``by_op`` (operation
        name -> count), ``reads`` (what each host read was, in order) and,
        on CUDA, ``kernels``.
    """
    ops = _Operations()
    _prepare(step)
    step()
    _prepare(step)
    with _HostReads() as reads, _extension_calls(ops.names), ops:
        step()
    result = dict(
        ops=len(ops.names),
        host_reads=len(reads.calls),
        by_op=dict(Counter(ops.names).most_common()),
        reads=reads.calls)
    if device == 'cuda':
        result['kernels'] = cuda_kernels(step)
    return result


def cuda_kernels(step: Callable[[], Any]) -> int:
    """Number of CUDA kernels that one run of ``step`` launched (the
    profiler's device events, memory copies and sets left out)."""
    from torch.profiler import ProfilerActivity, profile
    _prepare(step)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    return sum(1 for event in prof.events()
               if event.device_type == torch.autograd.DeviceType.CUDA
               and not event.name.lower().startswith(('memcpy', 'memset')))


def _prepare(step: Callable[[], Any]) -> None:
    """Call the step's ``prepare`` method, if it has one."""
    prepare = getattr(step, 'prepare', None)
    if prepare is not None:
        prepare()
