"""Timers of the benchmark scripts and the GPU check.

Every clock reading waits for the queued CUDA work first (:func:`now`), so
the same timers measure CPU and GPU runs; :func:`peak_memory` reports the
process' peak RSS and, once CUDA was used, its peak CUDA allocation.
"""
import resource
import statistics
import time
from typing import Callable, Dict, List


def now() -> float:
    """``time.perf_counter()`` once the queued CUDA work, if any, is done."""
    import torch
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


def peak_memory() -> Dict[str, float]:
    """``peak_rss_mb`` of this process and, once CUDA was used, the peak
    CUDA memory it allocated, ``peak_cuda_mb``."""
    import torch
    peak = dict(
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak['peak_cuda_mb'] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def time_training(model, data: dict, timed_owner, timed_method: str,
                  warmup: int, iters: int) -> dict:
    """Train ``warmup + iters`` SGD iterations on one batch.

    Args:
        model (nn.Module): An mmdet/mmseg model in train mode.
        data (dict): The preprocessed batch (``inputs``, ``data_samples``).
        timed_owner (object): Holder of the method whose time is reported;
            the method is wrapped while timing and restored afterwards,
            also when an iteration raises.
        timed_method (str): Its name.
        warmup (int): Untimed iterations first.
        iters (int): Timed iterations.

    Returns:
        dict: ``iter_s`` (median), ``iter_times``, ``part_ms`` (median),
        ``threads`` and :func:`peak_memory`.
    """
    import torch
    optim = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    spent = [0.0]
    had_own = timed_method in vars(timed_owner)
    real = getattr(timed_owner, timed_method)

    def timed(*args, **kwargs):
        start = now()
        result = real(*args, **kwargs)
        spent[0] += now() - start
        return result

    setattr(timed_owner, timed_method, timed)
    iter_times: List[float] = []
    part_times: List[float] = []
    try:
        for step in range(warmup + iters):
            spent[0] = 0.0
            start = now()
            loss, _ = model.parse_losses(model(**data, mode='loss'))
            optim.zero_grad()
            loss.backward()
            optim.step()
            if step >= warmup:
                iter_times.append(now() - start)
                part_times.append(spent[0])
    finally:
        _restore(timed_owner, timed_method, real, had_own)
    return dict(
        iter_s=statistics.median(iter_times),
        iter_times=iter_times,
        part_ms=1000 * statistics.median(part_times),
        threads=torch.get_num_threads(),
        **peak_memory())


def _restore(owner: object, name: str, real: Callable, had_own: bool) -> None:
    """Undo the patch of ``owner.name``: put back its own attribute, or
    delete the patch when ``real`` came from its class."""
    if had_own:
        setattr(owner, name, real)
    else:
        delattr(owner, name)


def time_case(step: Callable[[], None], warmup: int, repeats: int) -> Dict:
    """Median wall time of ``step`` after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = now()
        step()
        times.append(now() - start)
    return dict(
        median_ms=1000 * statistics.median(times),
        times_ms=[1000 * t for t in times])
