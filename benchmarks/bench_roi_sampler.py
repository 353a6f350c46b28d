"""Train-iteration time and peak memory of RoI samplers in Faster R-CNN.

Faster R-CNN R50-FPN (random init), batch 2 at 512x512, on CPU, with
mmdet's RandomSampler, mmdet's OHEMSampler and mmohem's OHEMSampler with its
loss-based NMS on and off. Every sampler variant runs in its own process, so
the peak resident memory (``ru_maxrss``) is that variant's. The iteration
time is the median over the timed iterations after the warm-up; the sampler
time is the time spent inside ``sampler.sample`` per iteration.

Usage::

    .venv/bin/python benchmarks/bench_roi_sampler.py --iters 5 --out roi.json
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List

VARIANTS: Dict[str, dict] = {
    'RandomSampler (mmdet)':
    dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
         add_gt_as_proposals=True),
    'OHEMSampler (mmdet)':
    dict(type='OHEMSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
         add_gt_as_proposals=True),
    'mmohem OHEMSampler, NMS 0.7':
    dict(type='mmohem.OHEMSampler', num=512, nms_thr=0.7),
    'mmohem OHEMSampler, no NMS':
    dict(type='mmohem.OHEMSampler', num=512, nms_thr=None),
}


def run_variant(name: str, warmup: int, iters: int, size: int) -> dict:
    """Train ``warmup + iters`` iterations in this process; return timings."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.hub import get_config

    import mmohem  # noqa: F401
    register_all_modules()
    torch.manual_seed(0)
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.train_cfg.rcnn.sampler = VARIANTS[name]
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    sampler = model.roi_head.bbox_sampler
    sample_time = [0.0]
    real_sample = sampler.sample

    def timed_sample(*args, **kwargs):
        start = time.perf_counter()
        result = real_sample(*args, **kwargs)
        sample_time[0] += time.perf_counter() - start
        return result

    sampler.sample = timed_sample
    packed = demo_mm_inputs(2, (3, size, size), num_items=[8, 8],
                            num_classes=80)
    data = model.data_preprocessor(packed, True)
    iter_times: List[float] = []
    sampler_times: List[float] = []
    for step in range(warmup + iters):
        sample_time[0] = 0.0
        start = time.perf_counter()
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step >= warmup:
            iter_times.append(time.perf_counter() - start)
            sampler_times.append(sample_time[0])
    return dict(
        variant=name,
        iter_s=statistics.median(iter_times),
        iter_times=iter_times,
        sampler_ms=1000 * statistics.median(sampler_times),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        threads=torch.get_num_threads())


def table(results: List[dict]) -> str:
    """Markdown table of the results, ratios against the first variant."""
    base = results[0]['iter_s']
    lines = [
        '| sampler | s/iter (median) | vs RandomSampler | sampler ms/iter '
        '| peak RSS (MB) |', '|---|---|---|---|---|'
    ]
    for r in results:
        lines.append(f"| {r['variant']} | {r['iter_s']:.3f} | "
                     f"{r['iter_s'] / base:.3f}x | {r['sampler_ms']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--out', default='bench_roi_sampler.json')
    parser.add_argument('--variant', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.warmup, args.iters,
                                     args.size)))
        return
    results = []
    for name in VARIANTS:
        print(f'running {name} ...', file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, __file__, '--variant', name, '--warmup',
             str(args.warmup), '--iters', str(args.iters), '--size',
             str(args.size)],
            check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(table(results))
    with open(args.out, 'w') as f:
        json.dump(dict(warmup=args.warmup, iters=args.iters, size=args.size,
                       batch=2, results=results), f, indent=2)


if __name__ == '__main__':
    main()
