"""Benchmark of mmohem.OhemCrossEntropy against mmseg (not a test).

Usage::

    .venv/bin/python tools/analysis_tools/bench_seg.py --out bench_seg.json
    python tools/analysis_tools/bench_seg.py --device cuda \
        --cases sampler/mmseg sampler/mmohem --out bench_seg_cuda.json
    .venv/bin/python tools/analysis_tools/bench_seg.py --shape 4 19 512 512 \
        --cases sampler/mmseg sampler/mmohem --out bench_seg_512.json

On CUDA the peak memory is the step's peak allocation above the memory
allocated before it.

Each case runs in two fresh subprocesses. Time: the step runs ``--warmup``
times, then ``--repeats`` times; the median wall time is reported. Peak
memory: after one warm-up step, the RSS high-water mark is reset
(``/proc/self/clear_refs``) and the peak RSS of one more step minus the RSS
just before it is reported: the memory the step needs on top of its inputs.
That subprocess runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc
returns every freed tensor to the OS and RSS follows live tensor memory
(tracemalloc does not see torch tensors); the timing one keeps the default
allocator, whose page-fault costs that setting would change.

Cases, all with thresh=0.7 and min_kept=100000 per image of 512x1024
(scaled to the pixels of ``--shape``: 50000 at 512x512):

* ``sampler``: logits 8x19x512x1024 (``--shape``), ~12% ignored pixels
  (bottom tenth of each image, the ego vehicle, plus 2% scattered); mmseg's
  OHEMPixelSampler vs ours, no gradient;
* ``loss``: same inputs, forward + backward; mmseg's CrossEntropyLoss
  (avg_non_ignore=True) vs our loss flavour;
* ``pspnet``: one training step (forward, loss, backward) of a PSPNet
  R18-d8 on 2x3x256x512 (min_kept scaled to the crop, 12500 per image):
  plain CE, mmseg's OHEMPixelSampler, our sampler, our loss flavour.

Logit regimes of the sampler and loss cases: ``random`` (N(0, 1) logits:
nearly every pixel is hard, the early-training case) and ``confident`` (the
true class boosted on 95% of the pixels: ~6% are hard, so min_kept decides
and the selection runs, the late-training case). The PSPNet cases use the
logits of a freshly initialised network (regime ``init``: nearly every pixel
is hard).
"""
import argparse
import json
import os
import platform
import re
import sys
from typing import Callable, Dict, List

import torch
from bench_common import repo_config, run_child
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from mmseg.structures.sampler import OHEMPixelSampler
from mmseg.utils import register_all_modules

from mmohem.benchmark.timing import time_case
from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler
from mmohem.testing.pixel_cases import (REGIMES, DecodeHead, pixel_batch,
                                        seg_data_samples)
from mmohem.utils import markdown_table

SHAPE = (8, 19, 512, 1024)
THRESH = 0.7
MIN_KEPT = 100000
PSP_SHAPE = (2, 3, 256, 512)
PSP_MIN_KEPT = MIN_KEPT * PSP_SHAPE[2] * PSP_SHAPE[3] // (512 * 1024)
CONFIG = ('configs/pspnet/'
          'pspnet_r50-d8_mmohem-ohem_4xb2-40k_cityscapes-512x1024.py')

CASES = {
    'sampler/mmseg': ('sampler', 'mmseg OHEMPixelSampler'),
    'sampler/mmohem': ('sampler', 'mmohem OhemCrossEntropy sampler'),
    'loss/ce': ('loss', 'mmseg CrossEntropyLoss'),
    'loss/mmohem': ('loss', 'mmohem OhemCrossEntropy loss'),
    'pspnet/ce': ('pspnet', 'PSPNet-R18 CE (no OHEM)'),
    'pspnet/mmseg-sampler': ('pspnet', 'PSPNet-R18 + mmseg OHEMPixelSampler'),
    'pspnet/mmohem-sampler': ('pspnet', 'PSPNet-R18 + mmohem sampler'),
    'pspnet/mmohem-loss': ('pspnet', 'PSPNet-R18 + mmohem loss'),
}
BASELINES = {
    'sampler': 'sampler/mmseg',
    'loss': 'loss/ce',
    'pspnet': 'pspnet/ce'
}
PSP_REGIME = 'init'


def min_kept_for(shape) -> int:
    """``MIN_KEPT`` per 512x1024 image, scaled to the pixels of
    ``shape`` (B, C, H, W)."""
    return MIN_KEPT * shape[2] * shape[3] // (512 * 1024)


def sampler_step(case: str,
                 regime: str,
                 device: str,
                 shape=SHAPE) -> Callable[[], None]:
    """mmseg's or our sampler on the big logits, no gradient."""

    cls = OHEMPixelSampler if case == 'sampler/mmseg' else \
        OhemCrossEntropySampler
    sampler = cls(DecodeHead(), thresh=THRESH, min_kept=min_kept_for(shape))
    logits, labels = pixel_batch(shape, regime, device=device)
    labels = labels[:, None]

    def step():
        with torch.no_grad():
            sampler.sample(logits, labels)

    return step


def loss_step(case: str,
              regime: str,
              device: str,
              shape=SHAPE) -> Callable[[], None]:
    """mmseg's CrossEntropyLoss or ours, forward + backward."""
    loss = CrossEntropyLoss(avg_non_ignore=True) if case == 'loss/ce' else \
        OhemCrossEntropyLoss(thresh=THRESH, min_kept=min_kept_for(shape))
    logits, labels = pixel_batch(
        shape, regime, requires_grad=True, device=device)

    def step():
        logits.grad = None
        loss(logits, labels, ignore_index=255).backward()

    return step


def pspnet_step(case: str, regime: str, device: str) -> Callable[[], None]:
    """One PSPNet-R18 training step with the case's OHEM (or none)."""
    register_all_modules(init_default_scope=True)
    model_cfg = repo_config(CONFIG).model
    model_cfg.pretrained = None
    model_cfg.backbone.depth = 18
    model_cfg.decode_head.update(in_channels=512, channels=128)
    model_cfg.auxiliary_head.update(in_channels=256, channels=64)
    for part in ('backbone', 'decode_head', 'auxiliary_head'):
        model_cfg[part].norm_cfg = dict(type='BN', requires_grad=True)
    ohem = dict(
        type='mmohem.OhemCrossEntropy', thresh=THRESH, min_kept=PSP_MIN_KEPT)
    if case == 'pspnet/ce':
        model_cfg.decode_head.sampler = None
    elif case == 'pspnet/mmseg-sampler':
        model_cfg.decode_head.sampler = dict(ohem, type='OHEMPixelSampler')
    elif case == 'pspnet/mmohem-sampler':
        model_cfg.decode_head.sampler = ohem
    else:
        model_cfg.decode_head.sampler = None
        model_cfg.decode_head.loss_decode = ohem
        model_cfg.auxiliary_head.loss_decode = dict(ohem, loss_weight=0.4)
    model = MODELS.build(model_cfg).to(device).train()
    gen = torch.Generator().manual_seed(0)
    b, _, h, w = PSP_SHAPE
    inputs = torch.randn(PSP_SHAPE, generator=gen).to(device)
    _, labels = pixel_batch((b, 19, h, w), 'random', device=device)
    samples = seg_data_samples(labels)

    def step():
        model.zero_grad(set_to_none=True)
        loss, _ = model.parse_losses(model.loss(inputs, samples))
        loss.backward()

    return step


STEPS = {'sampler': sampler_step, 'loss': loss_step, 'pspnet': pspnet_step}


def _status_mb(key: str) -> float:
    with open('/proc/self/status') as f:
        kb = re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M).group(1)
    return int(kb) / 1024


def measure_case(step: Callable[[], None], device: str) -> Dict:
    """Peak memory of one ``step`` above the memory before it, after a
    warm-up: RSS on the CPU, allocated memory on CUDA."""
    step()
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return dict(peak_mb=(torch.cuda.max_memory_allocated() - base) / 2**20)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base = _status_mb('VmRSS')
    step()
    return dict(peak_mb=_status_mb('VmHWM') - base)


def spawn(case: str, regime: str, what: str, args) -> Dict:
    """Run one measurement of one case in a fresh subprocess."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    if what == 'memory':
        env['MALLOC_MMAP_THRESHOLD_'] = '65536'
    return run_child(
        os.path.abspath(__file__),
        [
            '--child', case, '--regime', regime, '--measure', what, '--warmup',
            str(args.warmup), '--repeats',
            str(args.repeats), '--threads',
            str(args.threads), '--device', args.device, '--shape'
        ] + [str(n) for n in args.shape],
        env=env)


def table(results: List[Dict]) -> str:
    """Markdown table; ratios against each group's baseline and regime."""
    by_key = {(r['case'], r['regime']): r for r in results}
    rows = []
    for r in results:
        base = by_key.get((BASELINES[CASES[r['case']][0]], r['regime']))
        time_x = mem_x = '-'
        if base is not None:
            time_x = f"{r['median_ms'] / base['median_ms']:.2f}"
            mem_x = f"{r['peak_mb'] / max(base['peak_mb'], 1e-9):.2f}"
        rows.append([
            CASES[r['case']][1], r['regime'], f"{r['median_ms']:.0f}", time_x,
            f"{r['peak_mb']:.0f}", mem_x
        ])
    return markdown_table(
        ['case', 'logits', 'median ms', 'x baseline', 'peak MB', 'x baseline'],
        rows, 'llrrrr')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='bench_seg.json')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument(
        '--shape',
        type=int,
        nargs=4,
        default=list(SHAPE),
        metavar=('B', 'C', 'H', 'W'),
        help='logits of the sampler and loss cases')
    parser.add_argument(
        '--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument(
        '--regimes', nargs='+', default=list(REGIMES), choices=REGIMES)
    parser.add_argument('--child', choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument(
        '--regime', choices=REGIMES + (PSP_REGIME, ), help=argparse.SUPPRESS)
    parser.add_argument(
        '--measure', choices=('time', 'memory'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(args.threads)
        kind = CASES[args.child][0]
        shape = () if kind == 'pspnet' else (tuple(args.shape), )
        step = STEPS[kind](args.child, args.regime, args.device, *shape)
        print(
            json.dumps(
                time_case(step, args.warmup, args.repeats) if args.measure ==
                'time' else measure_case(step, args.device)))
        return
    results = []
    for case in args.cases:
        regimes = [PSP_REGIME] if CASES[case][0] == 'pspnet' else args.regimes
        for regime in regimes:
            results.append(
                dict(
                    case=case,
                    regime=regime,
                    load_avg_1min=os.getloadavg()[0],
                    **spawn(case, regime, 'time', args),
                    **spawn(case, regime, 'memory', args)))
            print(
                f"{case:24s} {regime:9s} {results[-1]['median_ms']:8.0f} ms"
                f" {results[-1]['peak_mb']:8.0f} MB",
                file=sys.stderr)
    report = dict(
        command=' '.join([os.path.basename(sys.executable)] + sys.argv),
        torch=torch.__version__,
        threads=args.threads,
        cpu=platform.processor() or platform.machine(),
        device=args.device,
        gpu=(torch.cuda.get_device_name() if args.device == 'cuda' else None),
        logits_shape=tuple(args.shape),
        pspnet_input=PSP_SHAPE,
        thresh=THRESH,
        min_kept=min_kept_for(args.shape),
        pspnet_min_kept=PSP_MIN_KEPT,
        memory=('peak CUDA allocation of one step minus the allocation '
                'before it' if args.device == 'cuda' else
                'peak RSS of one step minus RSS before it, fresh '
                'subprocess, MALLOC_MMAP_THRESHOLD_=65536'),
        results=results)
    print(table(results))
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
