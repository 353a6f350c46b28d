"""Train baseline and OHEM twins, evaluate both, print the comparison table.

Modes (exactly one):

``--demo``
    Runs the demo pairs of ``configs/demo/`` on the embedded demo dataset
    (generated into ``--data-root`` first if missing or stale). Each run is
    a ``tools/train.py`` subprocess; ``--jobs`` of them run at once with
    ``--threads`` torch threads each. A pair whose OHEM config names an
    ``mmohem.X`` type that is not registered yet is skipped, with a line
    saying so.

``--work-dirs ENTRY [ENTRY ...]``
    Builds the same table from finished mmengine work dirs, without
    training (e.g. COCO or Cityscapes runs made on a GPU machine). An
    ENTRY is either ``base=DIR[,DIR...]`` + ``ohem=DIR[,DIR...]`` (+
    optional ``name=LABEL``), one work dir per seed, or a ROOT folder
    laid out as this tool writes its runs::

        ROOT/<model>/baseline/<run>/  one mmengine work dir per seed
        ROOT/<model>/ohem/<run>/

    Each work dir is read from ``<timestamp>/vis_data/scalars.json`` (else
    ``<timestamp>/<timestamp>.log``): the last evaluation gives the metric,
    the mean logged ``time`` (first record left out) the seconds per
    iteration, the largest logged ``memory`` (mmengine's CUDA peak, MiB)
    the memory; without it, the peak RSS this tool recorded in
    ``mmohem_run.json``.

Outputs in ``--out``: ``benchmark.md`` (the table), ``benchmark.json``
(rows, every run's metrics, timing, memory) and ``benchmark.png`` (metric
bars, loss curves, the OHEM runs' ``ohem/...`` mining statistics). Demo
runs go to ``--out/runs/<pair>/{baseline,ohem}/seed<k>/`` (replaced on
each run), a layout ``--work-dirs`` reads back.

Examples::

    python tools/benchmark.py --demo
    python tools/benchmark.py --demo --pairs faster_rcnn --seeds 3
    python tools/benchmark.py --work-dirs \\
        base=work_dirs/frcnn_r50 ohem=work_dirs/frcnn_r50_ohem name='R50-FPN'
"""
import argparse
import json
import os
import os.path as osp
import shlex
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmohem.benchmark.logs import is_work_dir, read_work_dir
from mmohem.benchmark.pairs import (DEMO_PAIRS, Pair, data_root_options,
                                    schedule_options, unregistered_types)
from mmohem.benchmark.plots import save_figure
from mmohem.benchmark.runs import Job, Outcome, Reporter, run_jobs
from mmohem.benchmark.table import (METRICS, PairRuns, Row, build_rows,
                                    markdown_table, run_summary)
from mmohem.benchmark.workdirs import parse_entries
from mmohem.demo.generate import DEFAULT_ROOT, DatasetSpec, ensure_dataset

METRIC_KEYS = tuple(metric.key for metric in METRICS)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_OUT = osp.join('work_dirs', 'benchmark')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog=__doc__.split('\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        '--demo', action='store_true', help='train and compare the demo pairs')
    mode.add_argument(
        '--work-dirs',
        nargs='+',
        metavar='ENTRY',
        help='compare finished work dirs (layout below)')
    parser.add_argument(
        '--out',
        default=DEFAULT_OUT,
        help='output folder (default: %(default)s)')
    parser.add_argument(
        '--pairs',
        nargs='+',
        metavar='KEY',
        help='demo pairs to run, of ' + ', '.join(p.key for p in DEMO_PAIRS) +
        ' (default: ' + ', '.join(p.key
                                  for p in DEMO_PAIRS if p.default) + ')')
    parser.add_argument(
        '--seeds',
        type=int,
        default=1,
        help='runs per config, seeds 0..N-1; N > 1 adds '
        '± std (default: %(default)s)')
    parser.add_argument(
        '--iters',
        type=int,
        help='training iterations (default: the configs\')')
    parser.add_argument(
        '--jobs',
        type=int,
        default=min(2,
                    os.cpu_count() or 1),
        help='runs at once (default: %(default)s)')
    parser.add_argument(
        '--threads',
        type=int,
        help='torch threads per run (default: CPU cores / '
        'jobs)')
    parser.add_argument(
        '--data-root',
        default=DEFAULT_ROOT,
        help='demo dataset folder, relative to the '
        'repository (default: %(default)s)')
    parser.add_argument(
        '--num-train',
        type=int,
        default=DatasetSpec.num_train,
        help='demo train scenes (default: %(default)s)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=DatasetSpec.num_val,
        help='demo val scenes (default: %(default)s)')
    parser.add_argument(
        '--data-seed',
        type=int,
        default=DatasetSpec.seed,
        help='seed of the demo dataset (default: '
        '%(default)s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='passed to every run\'s tools/train.py')
    args = parser.parse_args(argv)
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    return args


def demo(
    args: argparse.Namespace, reporter: Reporter
) -> Tuple[List[PairRuns], List[Tuple[str, str]], List[str]]:
    """Prepare the data, train the demo pairs, read their work dirs.

    Returns:
        tuple[list, list, list]: The pairs' runs, the skipped pairs
        (``(key, reason)``) and the failed runs (labels).
    """
    data_root = osp.join(ROOT, args.data_root)
    _prepare_data(data_root, args, reporter)
    pairs, skipped = _runnable_pairs(args.pairs, reporter)
    jobs = _jobs(pairs, args, data_root)
    failed: List[str] = []

    def done(outcome: Outcome) -> None:
        reporter.line(_outcome_line(outcome))
        if outcome.returncode != 0:
            failed.append(outcome.job.label)

    run_jobs(jobs, args.jobs, reporter, done)
    return [_read_pair(pair, args.out, args.seeds) for pair in pairs], \
        skipped, failed


def _prepare_data(data_root: str, args: argparse.Namespace,
                  reporter: Reporter) -> None:
    """Generate the demo dataset unless it is there and current."""
    spec = DatasetSpec(
        seed=args.data_seed, num_train=args.num_train, num_val=args.num_val)
    start = time.perf_counter()
    if ensure_dataset(data_root, spec):
        reporter.line(f'demo data: generated {data_root} in '
                      f'{time.perf_counter() - start:.1f} s')
    else:
        reporter.line(f'demo data: {data_root} is current')


def _runnable_pairs(
        keys: Optional[Sequence[str]],
        reporter: Reporter) -> Tuple[List[Pair], List[Tuple[str, str]]]:
    """The requested demo pairs whose mmohem types are all registered."""
    known = {p.key: p for p in DEMO_PAIRS}
    unknown = sorted(set(keys or []) - set(known))
    if unknown:
        raise SystemExit(f'unknown pair(s) {unknown}; known: {list(known)}')
    runnable, skipped = [], []
    default = [p.key for p in DEMO_PAIRS if p.default]
    for pair in (known[k] for k in (keys or default)):
        missing = unregistered_types(
            Config.fromfile(osp.join(ROOT, pair.ohem)))
        if missing:
            reason = (', '.join(f'mmohem.{t}'
                                for t in missing) + ' is not registered yet')
            reporter.line(f'skipped {pair.key}: {reason}')
            skipped.append((pair.key, reason))
        else:
            runnable.append(pair)
    return runnable, skipped


def _jobs(pairs: List[Pair], args: argparse.Namespace,
          data_root: str) -> List[Job]:
    """One job per (seed, pair, side); both sides of a pair run together."""
    env = {
        'OMP_NUM_THREADS': str(args.threads),
        'MKL_NUM_THREADS': str(args.threads)
    }
    jobs = []
    for seed in range(args.seeds):
        for pair in pairs:
            for side, config in (('baseline', pair.baseline), ('ohem',
                                                               pair.ohem)):
                work_dir = _run_dir(args.out, pair.key, side, seed)
                shutil.rmtree(work_dir, ignore_errors=True)
                command = [
                    sys.executable,
                    osp.join(ROOT, 'tools', 'train.py'),
                    osp.join(ROOT,
                             config), '--work-dir', work_dir, '--cfg-options',
                    *_options(osp.join(ROOT, config), seed, args, data_root)
                ]
                label = f'{pair.key} {side} seed {seed}'
                jobs.append(Job(label, command, work_dir, env))
    return jobs


def _options(config: str, seed: int, args: argparse.Namespace,
             data_root: str) -> List[str]:
    """``--cfg-options`` of one run: seed, data root, schedule, user's."""
    cfg = Config.fromfile(config)
    options: Dict[str, object] = {'randomness.seed': seed}
    options.update(data_root_options(cfg, data_root))
    if args.iters:
        options.update(schedule_options(cfg, args.iters))
    return [f'{k}={v}' for k, v in options.items()] + list(args.cfg_options)


def _run_dir(out: str, key: str, side: str, seed: int) -> str:
    """Work dir of one demo run."""
    return osp.abspath(osp.join(out, 'runs', key, side, f'seed{seed}'))


def _read_pair(pair: Pair, out: str, seeds: int) -> PairRuns:
    """The finished runs of a demo pair (failed runs left out)."""
    sides = {}
    for side in ('baseline', 'ohem'):
        dirs = [_run_dir(out, pair.key, side, s) for s in range(seeds)]
        sides[side] = [read_work_dir(d) for d in dirs if is_work_dir(d)]
    return PairRuns(pair.model, sides['baseline'], sides['ohem'])


def _outcome_line(outcome: Outcome) -> str:
    """One lasting line per finished run."""
    label = outcome.job.label
    if outcome.returncode != 0 or not is_work_dir(outcome.job.work_dir):
        return (f'x {label}: FAILED (exit {outcome.returncode}) after '
                f'{outcome.wall_s:.0f} s; see {outcome.stdout_log}')
    run = read_work_dir(outcome.job.work_dir)
    metrics = ', '.join(f'{k} {v:g}' for k, v in run.metrics.items()
                        if k in METRIC_KEYS)
    speed = run.sec_per_iter()
    return (f'= {label}: {run.iters} iters, '
            f'{speed if speed is None else round(speed, 3)} s/iter, '
            f'{metrics or "no metric"}, peak RSS '
            f'{outcome.peak_rss_mib:.0f} MiB, {outcome.wall_s:.0f} s')


def write_report(out: str, rows: List[Row], pairs: List[PairRuns],
                 meta: dict) -> str:
    """Write benchmark.md / .json / .png; return the Markdown table."""
    os.makedirs(out, exist_ok=True)
    table = markdown_table(rows)
    with open(osp.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write(_markdown_page(table, meta))
    runs = [
        dict(model=p.model, side=side, **run_summary(r)) for p in pairs
        for side, runs in (('baseline', p.baseline), ('ohem', p.ohem))
        for r in runs
    ]
    with open(osp.join(out, 'benchmark.json'), 'w', encoding='utf-8') as f:
        json.dump(
            dict(meta, rows=[r.to_dict() for r in rows], runs=runs),
            f,
            indent=2)
    save_figure(rows, pairs, osp.join(out, 'benchmark.png'))
    return table


def _markdown_page(table: str, meta: dict) -> str:
    """benchmark.md: command, table, notes, skipped and failed runs."""
    lines = [
        '# OHEM vs baseline', '', f'Command: `{meta["command"]}`', '', table,
        '', NOTES
    ]
    for key, reason in meta.get('skipped', []):
        lines.append(f'- skipped `{key}`: {reason}')
    for label in meta.get('failed', []):
        lines.append(f'- FAILED run `{label}` (not in the table)')
    if meta.get('wall_s') is not None:
        lines.append(f'- wall time of the command: {meta["wall_s"]:.0f} s')
    lines += [
        '', '![metrics, losses and mining statistics](benchmark.png)', ''
    ]
    return '\n'.join(lines)


NOTES = '\n'.join([
    '- metric: the last evaluation of each run; COCO mAP x100, mIoU in %; '
    'mean ± sample std over seeds.',
    '- verdict: the sign of Δ; with several seeds, "within noise" when '
    '|Δ| ≤ 2 standard errors of the difference.',
    '- s/iter: mean of mmengine\'s logged `time` per training iteration, '
    'first logged window left out.',
    '- memory: peak RSS of the run\'s process (`ru_maxrss` from `os.wait4`) '
    'for runs this tool trained on CPU; mmengine\'s logged `memory` '
    '(CUDA peak) when the log has it.',
])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; return the exit status (1 if a run failed)."""
    args = parse_args(argv)
    start = time.perf_counter()
    reporter = Reporter()
    if args.demo:
        pairs, skipped, failed = demo(args, reporter)
    else:
        pairs = [p.read() for p in parse_entries(args.work_dirs)]
        skipped, failed = [], []
    rows = build_rows(pairs)
    meta = dict(
        command=' '.join(
            shlex.quote(a) for a in [
                'python', 'tools/benchmark.py', *(
                    sys.argv[1:] if argv is None else argv)
            ]),
        skipped=skipped,
        failed=failed,
        wall_s=time.perf_counter() - start if args.demo else None,
        settings=dict(
            seeds=args.seeds,
            iters=args.iters,
            jobs=args.jobs,
            threads=args.threads,
            cpu_count=os.cpu_count()))
    table = write_report(args.out, rows, pairs, meta)
    reporter.line(f'\n{table}\n\nwrote {osp.join(args.out, "benchmark.md")}'
                  f', benchmark.json, benchmark.png')
    if args.demo:
        reporter.line(f'total wall time {meta["wall_s"]:.0f} s')
    return 1 if failed or not rows else 0


if __name__ == '__main__':
    sys.exit(main())
