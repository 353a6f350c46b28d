"""Release check of mmohem on one NVIDIA GPU (runs on a CPU at small sizes).

Usage::

    python tools/gpu_check.py --out work_dirs/gpu_check          # CUDA
    python tools/gpu_check.py --device cpu --quick --out /tmp/c  # CPU

``tools/gpu_check.sh`` sets up the environment and runs this, then the
GPU timing benchmarks. Sections (``--sections`` picks some):

* ``build``: versions; mmcv's ``nms`` and ``RoIAlign`` run on the device
  (on CUDA: mmcv has its CUDA ops).
* ``amp``: one autocast step (float16 on CUDA, bfloat16 on a CPU) of
  Faster R-CNN FPN, Cascade R-CNN and Faster R-CNN C4: every RoI-head
  parameter that gets a gradient with the config's sampler gets one with
  ``mmohem.OHEMSampler`` (and which ones mmdet's ``OHEMSampler`` misses).
* ``agreement``: the mining functions keep the same examples on the CPU
  and on the device from the same inputs.
* ``nms``: peak memory and time of the loss-based NMS at 16k, 64k and 200k
  boxes, in bounded chunks and in one call.
* ``syncs``: host synchronisations per miner step
  (``torch.cuda.set_sync_debug_mode``; host reads on a CPU).
* ``launches``: launched operations, host reads and (on CUDA) kernels of
  one mining step of mmohem and of its peer on the same inputs
  (``tools/analysis_tools/count_launches.py``).

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out`` and exits 1
when a check fails (``build``, ``amp``, ``agreement``).
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
from typing import Callable, Dict, List, Optional, Sequence

import torch

from mmohem.utils import markdown_table

AMP_CONFIGS = ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
               'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
               'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py')
NMS_SIZES = (16384, 65536, 200000)
QUICK_NMS_SIZES = (2000, 4000)
SECTIONS = ('build', 'amp', 'agreement', 'nms', 'syncs', 'launches')


def describe(error: Exception) -> str:
    """An exception as a report shows it: ``'TypeName: message'``."""
    return f'{type(error).__name__}: {error}'


def check_build(device: str) -> Dict:
    """Versions, and whether mmcv's ``nms`` and ``RoIAlign`` run on
    ``device`` (on CUDA: mmcv has its CUDA ops). If they raise (mmcv without
    its CUDA ops does), the build fails with the ``error`` and the other
    sections still run.

    ``mmcv.ops.get_compiling_cuda_version`` is not called: in the ops-only
    build of ``tools/gpu/build_mmcv_ops.py`` it crashed the process on an
    H200 (torch 2.11, CUDA 13) while both ops ran.
    """
    import mmcv
    versions = dict(
        torch=torch.__version__,
        cuda=torch.version.cuda,
        mmcv=mmcv.__version__,
        python=platform.python_version(),
        device=(torch.cuda.get_device_name() if device == 'cuda' else
                platform.processor() or platform.machine()))
    try:
        ops_run = mmcv_ops_run(device)
    except Exception as error:  # reported, and the check fails
        return dict(versions, ops_run=False, ok=False, error=describe(error))
    return dict(versions, ops_run=ops_run, ok=ops_run)


def mmcv_ops_run(device: str) -> bool:
    """Whether mmcv's ``nms`` and ``RoIAlign`` give the known answer of a
    tiny case on ``device``."""
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]],
                         device=device)
    _, keep = nms(boxes, torch.tensor([1., .5], device=device), 0.5)
    feats = torch.rand(1, 4, 8, 8, device=device)
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device=device)
    pooled = RoIAlign((2, 2), 1.0)(feats, rois)
    return keep.tolist() == [0] and pooled.shape == (1, 4, 2, 2)


def check_amp(device: str, quick: bool) -> List[Dict]:
    """:func:`mmohem.testing.amp_gradient_check` for :data:`AMP_CONFIGS`; a
    config whose step raises is a failed row with the ``error``, and the
    other configs still run."""
    from mmohem.testing import amp_gradient_check
    dtype = torch.float16 if device == 'cuda' else torch.bfloat16
    rows = []
    for name in AMP_CONFIGS:
        try:
            rows.append(
                amp_gradient_check(
                    name,
                    device,
                    dtype,
                    depth=18 if quick else 50,
                    size=128 if quick else 512))
        except Exception as error:  # reported, and the check fails
            rows.append(
                dict(
                    config=name,
                    dtype=str(dtype).replace('torch.', ''),
                    ok=False,
                    error=describe(error)))
    return rows


def run_sections(device: str, quick: bool,
                 sections: Sequence[str]) -> Dict[str, object]:
    """Each requested section's results."""
    from mmohem.testing import miner_host_syncs, mining_agreement, nms_memory
    from mmohem.testing.launch_cases import count_cases
    run: Dict[str, Callable[[], object]] = dict(
        build=lambda: check_build(device),
        amp=lambda: check_amp(device, quick),
        agreement=lambda: mining_agreement(device),
        nms=lambda: nms_memory(QUICK_NMS_SIZES
                               if quick else NMS_SIZES, device),
        syncs=lambda: miner_host_syncs(device),
        launches=lambda: count_cases(device, 500 if quick else 2000))
    results = {}
    for name in sections:
        print(f'[gpu_check] {name} ...', file=sys.stderr, flush=True)
        results[name] = run[name]()
    return results


def failures(results: Dict[str, object]) -> List[str]:
    """What failed: the build (where checked), an AMP config, a mining
    case whose kept examples differ between the CPU and the device."""
    failed = []
    if 'build' in results and not results['build']['ok']:
        failed.append('build')
    failed += [
        f"amp: {r['config']}" for r in results.get('amp', []) if not r['ok']
    ]
    failed += [
        f'agreement: {name}'
        for name, r in results.get('agreement', {}).items() if r['differ']
    ]
    return failed


def amp_counts(row: Dict) -> List[object]:
    """The numbers of an ``amp`` row, or its error in their place."""
    if 'error' in row:
        return [f"error: {row['error']}", '-', '-']
    return [
        row['trained'],
        len(row['mmohem_missing']),
        len(row['mmdet_missing'])
    ]


def report(results: Dict[str, object], device: str, failed: List[str],
           command: str) -> str:
    """The results as Markdown, one table per section."""
    parts = [
        f'# mmohem GPU check ({device})', '', f'`{command}`', '',
        f"**{'FAILED: ' + '; '.join(failed) if failed else 'passed'}**"
    ]
    if 'build' in results:
        build = results['build']
        parts += [
            '', '## Build', '',
            markdown_table(['item', 'value'], build.items())
        ]
    if 'amp' in results:
        parts += [
            '', '## RoI-head gradients under autocast', '',
            markdown_table([
                'config', 'dtype', 'parameters trained (baseline)',
                'missing with mmohem', 'missing with mmdet OHEM'
            ], [[r['config'], r['dtype'], *amp_counts(r)]
                for r in results['amp']], 'lllrr')
        ]
    if 'agreement' in results:
        parts += [
            '', '## Same examples on the CPU and the device', '',
            markdown_table(['case', 'kept (CPU)', 'kept differently'],
                           [[k, v['kept'], v['differ']]
                            for k, v in results['agreement'].items()], 'lrr')
        ]
    if 'nms' in results:
        parts += [
            '', '## Loss-based NMS: peak memory and time', '',
            markdown_table(['boxes', 'mode', 'peak MiB', 'ms', 'survivors'], [[
                r['boxes'], r['mode'],
                '-' if r['peak_mib'] is None else f"{r['peak_mib']:.0f}",
                f"{r['ms']:.1f}", r['survivors']
            ] for r in results['nms']], 'rlrrr')
        ]
    if 'syncs' in results:
        parts += [
            '', '## Host synchronisations per miner step', '',
            markdown_table(['step', 'count'],
                           [[k, v['count']]
                            for k, v in results['syncs'].items()], 'lr')
        ]
    if 'launches' in results:
        parts += [
            '', '## Launches per mining step', '',
            markdown_table(
                ['case', 'arm', 'ops', 'host reads', 'kernels', 'vs peer'], [[
                    r['case'], r['arm'], r['ops'], r['host_reads'],
                    '-' if r['kernels'] is None else r['kernels'],
                    f"{r['vs_peer']:.2f}x"
                ] for r in results['launches']], 'llrrrr')
        ]
    return '\n'.join(parts) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda', choices=('cuda', 'cpu'))
    parser.add_argument(
        '--quick',
        action='store_true',
        help='small sizes and ResNet-18 models (CPU tests)')
    parser.add_argument(
        '--sections',
        nargs='+',
        default=list(SECTIONS),
        choices=list(SECTIONS))
    parser.add_argument('--out', default='work_dirs/gpu_check')
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device here; use '
                     '--device cpu for the CPU run')
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import mmohem  # noqa: F401
    results = run_sections(args.device, args.quick, args.sections)
    failed = failures(results)
    command = ' '.join(['python', 'tools/gpu_check.py'] +
                       list(sys.argv[1:] if argv is None else argv))
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'gpu_check.json'), 'w') as f:
        json.dump(
            dict(
                command=command, device=args.device, failed=failed, **results),
            f,
            indent=2)
    text = report(results, args.device, failed, command)
    with open(osp.join(args.out, 'gpu_check.md'), 'w') as f:
        f.write(text)
    print(text)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
