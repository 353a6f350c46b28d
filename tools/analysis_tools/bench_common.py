"""Shared machinery of the timing scripts (not a test).

Each variant trains in its own subprocess (so ``ru_maxrss`` is that
variant's peak resident memory); the iteration time is the median over the
timed iterations after the warm-up; the part time is the median time spent
per iteration inside one method of the model (the sampler, the loss).
The timers are :mod:`mmohem.benchmark.timing`'s, which wait for the queued
CUDA work before each clock reading, so they measure a GPU run too.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Tuple

from mmohem.benchmark.timing import time_training
from mmohem.utils import markdown_table

#: The repository root: the scripts read its configs from any directory.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def repo_config(path: str):
    """The config at ``path``, relative to the repository root."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, path))


def time_dense_head(args: argparse.Namespace,
                    num_items: int,
                    upstream: Optional[str] = None,
                    ohem: Optional[str] = None,
                    nms_thr: Optional[float] = None) -> dict:
    """Time the training of a one-stage detector: mmdet's ``upstream``
    config (a path under ``mmdet::``), or mmohem's ``ohem`` config (a path
    in the repository) with the miner's NMS IoU set to ``nms_thr``; the
    part timed is the head's ``loss_by_feat``."""
    from mmengine.hub import get_config

    mmdet_ready()
    if upstream is not None:
        cfg = get_config(f'mmdet::{upstream}')
    else:
        cfg = repo_config(ohem)
        cfg.model.train_cfg.sampler.nms_thr = nms_thr
    return time_detector(cfg.model, args, num_items, lambda model:
                         (model.bbox_head, 'loss_by_feat'))


def time_detector(model_cfg,
                  args: argparse.Namespace,
                  num_items: int,
                  timed: Callable[[object], Tuple[object, str]],
                  num_classes: int = 80) -> dict:
    """Build an mmdet detector (random init) and time its training on a
    batch of ``args.batch`` demo images with ``num_items`` boxes each.

    Args:
        model_cfg (ConfigDict): The model config; its backbone's
            ``init_cfg`` is dropped (no pretrained weights here).
        args (argparse.Namespace): ``batch``, ``size``, ``device``,
            ``warmup`` and ``iters`` of the command line.
        num_items (int): Ground-truth boxes per image.
        timed (callable): model -> (owner, method name) of the part whose
            time is reported.
        num_classes (int): Classes of the ground-truth labels.

    Returns:
        dict: :func:`mmohem.benchmark.timing.time_training`'s result.
    """
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs

    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(args.device).train()
    packed = demo_mm_inputs(
        args.batch, (3, *image_size(args.size)),
        num_items=[num_items] * args.batch,
        num_classes=num_classes)
    data = model.data_preprocessor(packed, True)
    owner, method = timed(model)
    return time_training(model, data, owner, method, args.warmup, args.iters)


def mmdet_ready() -> None:
    """Register mmdet's and mmohem's modules and seed torch, as every
    detection variant starts."""
    import torch
    from mmdet.utils import register_all_modules

    import mmohem  # noqa: F401
    register_all_modules()
    torch.manual_seed(0)


def image_size(size: str) -> Tuple[int, int]:
    """``'512'`` or ``'1333x800'`` (width x height) as ``(height, width)``."""
    width, _, height = size.partition('x')
    return int(height or width), int(width)


def table(results: List[dict], first_header: str, part_header: str) -> str:
    """Markdown table of the results, time ratios against the first; peak
    CUDA memory instead of peak RSS for a CUDA run."""
    base = results[0]['iter_s']
    memory = 'peak_cuda_mb' if 'peak_cuda_mb' in results[0] else \
        'peak_rss_mb'
    memory_header = 'peak CUDA (MB)' if memory == 'peak_cuda_mb' else \
        'peak RSS (MB)'
    return markdown_table([
        first_header, 's/iter (median)', f'vs {results[0]["variant"]}',
        f'{part_header} ms/iter', memory_header
    ], [[
        r['variant'], f"{r['iter_s']:.3f}", f"{r['iter_s'] / base:.3f}x",
        f"{r['part_ms']:.1f}", f'{r[memory]:.0f}'
    ] for r in results])


def run_child(script: str,
              args: List[str],
              env: Optional[Dict[str, str]] = None) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter, one measurement
    per process (so that its peak memory is its own), and return the JSON
    object printed on its last line of output."""
    out = subprocess.run([sys.executable, script, *args],
                         env=env,
                         check=True,
                         capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(
    script: str,
    variants: Dict[str, object],
    run_variant: Callable[[str, argparse.Namespace], dict],
    description: str,
    defaults: dict,
    headers: tuple,
    add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None
) -> None:
    """Command line of a benchmark script: run every variant in a
    subprocess of ``script``, print the table and write the JSON.

    ``add_arguments`` adds the script's own options; every option but
    ``--out`` and ``--variants`` is passed on to the variant subprocesses
    and saved in the JSON.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument(
        '--size',
        default=str(defaults['size']),
        help='image side, or WIDTHxHEIGHT (e.g. 1333x800)')
    parser.add_argument('--batch', type=int, default=defaults['batch'])
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--out', default=defaults['out'])
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=list(variants),
        default=list(variants),
        help='the variants to run')
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
        for k, v in vars(args).items()
        if k not in ('out', 'variant', 'variants')
    }
    results = []
    for name in args.variants:
        print(f'running {name} ...', file=sys.stderr, flush=True)
        results.append(
            run_child(
                script, ['--variant', name] +
                [f'--{k.replace("_", "-")}={v}' for k, v in settings.items()]))
    print(table(results, *headers))
    with open(args.out, 'w') as f:
        json.dump(dict(settings, results=results), f, indent=2)
