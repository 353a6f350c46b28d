"""Shared machinery of the CPU training-iteration benchmarks (not a test).

Each variant trains in its own subprocess (so ``ru_maxrss`` is that
variant's peak resident memory); the iteration time is the median over the
timed iterations after the warm-up; the part time is the median time spent
per iteration inside one method of the model (the sampler, the loss).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional


def time_training(model, data: dict, timed_owner, timed_method: str,
                  warmup: int, iters: int) -> dict:
    """Train ``warmup + iters`` SGD iterations on one batch.

    Args:
        model (nn.Module): An mmdet/mmseg model in train mode.
        data (dict): The preprocessed batch (``inputs``, ``data_samples``).
        timed_owner (object): Holder of the method whose time is reported.
        timed_method (str): Its name.
        warmup (int): Untimed iterations first.
        iters (int): Timed iterations.

    Returns:
        dict: ``iter_s`` (median), ``iter_times``, ``part_ms`` (median),
        ``peak_rss_mb`` and ``threads``.
    """
    import torch
    optim = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    spent = [0.0]
    real = getattr(timed_owner, timed_method)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = real(*args, **kwargs)
        spent[0] += time.perf_counter() - start
        return result

    setattr(timed_owner, timed_method, timed)
    iter_times: List[float] = []
    part_times: List[float] = []
    for step in range(warmup + iters):
        spent[0] = 0.0
        start = time.perf_counter()
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step >= warmup:
            iter_times.append(time.perf_counter() - start)
            part_times.append(spent[0])
    return dict(
        iter_s=statistics.median(iter_times),
        iter_times=iter_times,
        part_ms=1000 * statistics.median(part_times),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        threads=torch.get_num_threads())


def time_case(step: Callable[[], None], warmup: int, repeats: int) -> Dict:
    """Median wall time of ``step`` after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return dict(median_ms=1000 * statistics.median(times),
                times_ms=[1000 * t for t in times])


def table(results: List[dict], first_header: str, part_header: str) -> str:
    """Markdown table of the results, time ratios against the first."""
    base = results[0]['iter_s']
    lines = [
        f'| {first_header} | s/iter (median) | vs {results[0]["variant"]} '
        f'| {part_header} ms/iter | peak RSS (MB) |', '|---|---|---|---|---|'
    ]
    for r in results:
        lines.append(f"| {r['variant']} | {r['iter_s']:.3f} | "
                     f"{r['iter_s'] / base:.3f}x | {r['part_ms']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return '\n'.join(lines)


def main(script: str,
         variants: Dict[str, object],
         run_variant: Callable[[str, argparse.Namespace], dict],
         description: str,
         defaults: dict,
         headers: tuple,
         add_arguments: Optional[Callable[[argparse.ArgumentParser],
                                          None]] = None) -> None:
    """Command line of a benchmark script: run every variant in a
    subprocess of ``script``, print the table and write the JSON.

    ``add_arguments`` adds the script's own options; every option but
    ``--out`` is passed on to the variant subprocesses and saved in the
    JSON.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--size', type=int, default=defaults['size'])
    parser.add_argument('--batch', type=int, default=defaults['batch'])
    parser.add_argument('--out', default=defaults['out'])
    parser.add_argument('--variant', help=argparse.SUPPRESS)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    if args.variant:
        result = run_variant(args.variant, args)
        print(json.dumps(dict(result, variant=args.variant)))
        return
    settings = {
        k: v
        for k, v in vars(args).items() if k not in ('out', 'variant')
    }
    results = []
    for name in variants:
        print(f'running {name} ...', file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, script, '--variant', name] +
            [f'--{k.replace("_", "-")}={v}' for k, v in settings.items()],
            check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(table(results, *headers))
    with open(args.out, 'w') as f:
        json.dump(dict(settings, results=results), f, indent=2)
