"""Train a baseline and its peer configs, evaluate all, print the comparison.

An experiment is a model and its *arms*: the baseline config first, then
the configs compared with it (mmdet's or mmseg's own OHEM, mmohem's OHEM,
...). The table has one row per experiment, metric and arm, with the Δ of
each arm against the baseline.

Modes (exactly one):

``--demo``
    Runs the demo experiments of ``configs/demo/`` on the embedded demo
    dataset (generated into ``--data-root`` first if missing or stale).
    Each run is a ``tools/train.py`` subprocess; ``--jobs`` of them run at
    once with ``--threads`` torch threads each, all arms of an experiment
    and seed queued together. ``--experiments`` picks experiments.

``--work-dirs ENTRY [ENTRY ...]``
    Builds the same table from finished mmengine work dirs, without
    training (e.g. COCO or Cityscapes runs made on a GPU machine). An
    ENTRY is ``arm=NAME:DIR[,DIR...]`` (repeated, one per arm, the first
    being the baseline; one work dir per seed) with an optional
    ``name=LABEL``. An experiment ends at a second ``name=`` or a repeated
    arm name. Or an ENTRY is a ROOT folder laid out as this tool writes
    its runs::

        ROOT/<model>/baseline/<run>/  one mmengine work dir per seed
        ROOT/<model>/<arm>/<run>/     any other arms, in sorted order

    Each work dir is read from ``<timestamp>/vis_data/scalars.json`` (else
    ``<timestamp>/<timestamp>.log``): the last evaluation gives the
    metrics, the logged ``candidate_loss`` of the last 100 iterations the
    loss over all candidates, the mean logged ``time`` (first record left
    out) the seconds per iteration, the largest logged ``memory``
    (mmengine's CUDA peak, MiB) the memory; without it, the peak RSS this
    tool recorded in ``mmohem_run.json``.

Outputs in ``--out``: ``benchmark.md`` (the table and its provenance),
``benchmark.json`` (rows; every run's experiment, arm, metrics, timing,
memory, torch threads and the most runs at once; the provenance: git commit
and changed files, package versions, Python, platform, CPU and, with
``--demo``, the demo data's digest) and ``benchmark.png`` (metric bars, loss
and candidate-loss curves of every arm, the ``ohem_...`` mining
statistics; logs of earlier versions, ``ohem/...``, read alike). Demo runs
go to ``--out/runs/<experiment>/<arm>/seed<k>/`` (replaced on each run;
``<arm>`` is ``baseline`` for the baseline, else the arm's name made
folder-safe, e.g. ``mmdet-OHEM``), a layout ``--work-dirs`` reads back.
A config that an earlier experiment of the same command trains at the same
seed (a baseline two experiments share) trains once; the later experiment's
folder is a link to that run.

Examples::

    python tools/benchmark.py --demo
    python tools/benchmark.py --demo --experiments faster_rcnn --seeds 3
    python tools/benchmark.py --work-dirs arm=baseline:work_dirs/frcnn \\
        'arm=mmdet OHEM:work_dirs/frcnn_mmdet_ohem' \\
        'arm=mmohem OHEM:work_dirs/frcnn_ohem' name='R50-FPN'
"""
import argparse
import json
import os
import os.path as osp
import shlex
import shutil
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmohem.benchmark.logs import RunLog, is_work_dir, read_work_dir
from mmohem.benchmark.pairs import (DEMO_EXPERIMENTS, Experiment,
                                    data_root_options, schedule_options)
from mmohem.benchmark.plots import save_figure
from mmohem.benchmark.provenance import markdown_lines, provenance
from mmohem.benchmark.runs import Job, Outcome, Reporter, run_jobs, thread_env
from mmohem.benchmark.table import (METRICS, TRAIN_WINDOW, ArmRuns,
                                    ExperimentRuns, Row, build_rows,
                                    markdown_table, run_summary)
from mmohem.benchmark.workdirs import parse_entries
from mmohem.demo.generate import DEFAULT_ROOT, DatasetSpec, ensure_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
DEFAULT_OUT = osp.join('work_dirs', 'benchmark')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog=__doc__.split('\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        '--demo',
        action='store_true',
        help='train and compare the demo experiments')
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
        '--experiments',
        nargs='+',
        metavar='KEY',
        help='demo experiments to run, of ' + _keys(DEMO_EXPERIMENTS) +
        ' (default: ' + _keys(e for e in DEMO_EXPERIMENTS if e.default) + ')')
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


def _keys(experiments: Iterable[Experiment]) -> str:
    return ', '.join(e.key for e in experiments)


def demo(args: argparse.Namespace,
         reporter: Reporter) -> Tuple[List[ExperimentRuns], List[str]]:
    """Prepare the data, train the demo experiments, read their work dirs.

    Returns:
        tuple[list, list]: The experiments' runs and the failed runs
        (labels).
    """
    experiments = _demo_experiments(args.experiments)
    data_root = _data_root(args)
    _prepare_data(data_root, args, reporter)
    jobs = _jobs(experiments, args, data_root)
    failed: List[str] = []

    def done(outcome: Outcome) -> None:
        reporter.line(_outcome_line(outcome))
        if outcome.returncode != 0:
            failed.append(outcome.job.label)

    run_jobs(jobs, args.jobs, reporter, done)
    return [_read_experiment(e, args.out, args.seeds)
            for e in experiments], failed


def _data_root(args: argparse.Namespace) -> str:
    """The demo dataset folder (``--data-root`` relative to the
    repository)."""
    return osp.join(ROOT, args.data_root)


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


def _demo_experiments(keys: Optional[Sequence[str]]) -> List[Experiment]:
    """The demo experiments named by ``keys`` (default: the default ones).

    Raises:
        SystemExit: On a key that names no demo experiment.
    """
    known = {e.key: e for e in DEMO_EXPERIMENTS}
    unknown = sorted(set(keys or []) - set(known))
    if unknown:
        raise SystemExit(
            f'unknown experiment(s) {unknown}; known: {list(known)}')
    return [
        known[k]
        for k in keys or (e.key for e in DEMO_EXPERIMENTS if e.default)
    ]


def _jobs(experiments: List[Experiment], args: argparse.Namespace,
          data_root: str) -> List[Job]:
    """One job per (seed, experiment, arm); the arms of an experiment run
    together. An arm whose config already runs at that seed in an earlier
    experiment (the baseline that ``faster_rcnn`` and ``faster_rcnn_peers``
    share) trains once: its run folder links to that run."""
    env = thread_env(args.threads)
    jobs = []
    first: Dict[Tuple[str, int], str] = {}
    for seed in range(args.seeds):
        for experiment in experiments:
            for arm, folder in zip(experiment.arms, experiment.folders()):
                work_dir = _run_dir(args.out, experiment.key, folder, seed)
                _clear(work_dir)
                config = osp.join(ROOT, arm.config)
                if (config, seed) in first:
                    _link(first[config, seed], work_dir)
                    continue
                first[config, seed] = work_dir
                command = [
                    sys.executable, TRAIN, config, '--work-dir', work_dir,
                    '--cfg-options', *_options(config, seed, args, data_root)
                ]
                label = f'{experiment.key} / {arm.name} / seed {seed}'
                jobs.append(Job(label, command, work_dir, env))
    return jobs


def _clear(path: str) -> None:
    """Remove an earlier run's folder, or the link that stood for it."""
    if osp.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _link(target: str, path: str) -> None:
    """Make ``path`` a relative link to the run folder ``target``."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    os.symlink(osp.relpath(target, osp.dirname(path)), path)


def _options(config: str, seed: int, args: argparse.Namespace,
             data_root: str) -> List[str]:
    """``--cfg-options`` of one run: seed, data root, schedule, user's."""
    cfg = Config.fromfile(config)
    options: Dict[str, object] = {'randomness.seed': seed}
    options.update(data_root_options(cfg, data_root))
    if args.iters:
        options.update(schedule_options(cfg, args.iters))
    return [f'{k}={v}' for k, v in options.items()] + list(args.cfg_options)


def _run_dir(out: str, key: str, folder: str, seed: int) -> str:
    """Work dir of one demo run."""
    return osp.abspath(osp.join(out, 'runs', key, folder, f'seed{seed}'))


def _read_experiment(experiment: Experiment, out: str,
                     seeds: int) -> ExperimentRuns:
    """The finished runs of a demo experiment (failed runs left out)."""
    arms = []
    for arm, folder in zip(experiment.arms, experiment.folders()):
        dirs = [_run_dir(out, experiment.key, folder, s) for s in range(seeds)]
        arms.append(
            ArmRuns(arm.name,
                    [read_work_dir(d) for d in dirs if is_work_dir(d)]))
    return ExperimentRuns(experiment.model, arms)


def _outcome_line(outcome: Outcome) -> str:
    """One lasting line per finished run."""
    label = outcome.job.label
    if outcome.returncode != 0 or not is_work_dir(outcome.job.work_dir):
        return (f'x {label}: FAILED (exit {outcome.returncode}) after '
                f'{outcome.wall_s:.0f} s; see {outcome.stdout_log}')
    run = read_work_dir(outcome.job.work_dir)
    values = ((m.key, m.value(run)) for m in METRICS)
    metrics = ', '.join(f'{k} {v:g}' for k, v in values if v is not None)
    speed = run.sec_per_iter()
    return (f'= {label}: {run.iters} iters, '
            f'{speed if speed is None else round(speed, 3)} s/iter, '
            f'{metrics or "no metric"}, peak RSS '
            f'{outcome.peak_rss_mib:.0f} MiB, {outcome.wall_s:.0f} s')


def write_report(out: str, rows: List[Row], experiments: List[ExperimentRuns],
                 meta: dict) -> str:
    """Write benchmark.md / .json / .png; return the Markdown table."""
    os.makedirs(out, exist_ok=True)
    table = markdown_table(rows)
    logs = [r for e in experiments for arm in e.arms for r in arm.runs]
    with open(osp.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write(_markdown_page(table, meta, logs))
    runs = [
        dict(experiment=e.model, arm=arm.name, **run_summary(r))
        for e in experiments for arm in e.arms for r in arm.runs
    ]
    with open(osp.join(out, 'benchmark.json'), 'w', encoding='utf-8') as f:
        json.dump(
            dict(meta, rows=[r.to_dict() for r in rows], runs=runs),
            f,
            indent=2)
    save_figure(rows, experiments, osp.join(out, 'benchmark.png'))
    return table


def _markdown_page(table: str, meta: dict, runs: List[RunLog]) -> str:
    """benchmark.md: command, table, notes, failed runs, provenance."""
    lines = [
        '# OHEM benchmark: arms vs baseline', '',
        f'Command: `{meta["command"]}`', '', table, '', NOTES
    ]
    for label in meta['failed']:
        lines.append(f'- FAILED run `{label}` (not in the table)')
    if meta['wall_s'] is not None:
        lines.append(f'- wall time of the command: {meta["wall_s"]:.0f} s')
    lines += ['', '## Provenance', '']
    lines += markdown_lines(meta['provenance'], runs)
    if meta['settings'] is None:
        lines.append('- code and machine are those of this command, which '
                     'read the runs; those that trained them are not '
                     'recorded here')
    lines += [
        '', '![metrics, losses and mining statistics](benchmark.png)', ''
    ]
    return '\n'.join(lines)


NOTES = '\n'.join([
    '- rows: one per experiment, metric and arm; the first arm of an '
    'experiment is its baseline (Δ and verdict "—"), Δ is an arm\'s mean '
    'minus the baseline\'s; a metric gets rows when some arm logged it.',
    '- metrics: the last evaluation of each run, COCO AP x100 (star AP: the '
    'rare class, small AP: small objects), mIoU in %, distractor FP / image '
    '(confident detections on the unlabelled distractors), distractor pixels '
    'claimed % (distractor pixels predicted as a class); the loss over all '
    'candidates is the mean of the logged `candidate_loss` (every RoI, '
    f'anchor or pixel, before the step) over the last {TRAIN_WINDOW} '
    'iterations; mean ± sample std over seeds.',
    '- verdict: the sign of Δ in the metric\'s direction (lower is better '
    'for ' + ', '.join(m.label for m in METRICS if not m.higher_is_better) +
    '); with several seeds, "within noise" when |Δ| ≤ 2 standard errors of '
    'the difference.',
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
        experiments, failed = demo(args, reporter)
    else:
        experiments = [e.read() for e in parse_entries(args.work_dirs)]
        failed = []
    rows = build_rows(experiments)
    meta = dict(
        command=' '.join(
            shlex.quote(a) for a in [
                'python', 'tools/benchmark.py', *(
                    sys.argv[1:] if argv is None else argv)
            ]),
        failed=failed,
        wall_s=time.perf_counter() - start if args.demo else None,
        settings=_settings(args) if args.demo else None,
        provenance=provenance(ROOT,
                              _data_root(args) if args.demo else None))
    table = write_report(args.out, rows, experiments, meta)
    reporter.line(f'\n{table}\n\nwrote {osp.join(args.out, "benchmark.md")}'
                  f', benchmark.json, benchmark.png')
    if args.demo:
        reporter.line(f'total wall time {meta["wall_s"]:.0f} s')
    return 1 if failed or not rows else 0


def _settings(args: argparse.Namespace) -> Dict[str, Optional[int]]:
    """The options of a ``--demo`` command that shape its runs."""
    return dict(
        seeds=args.seeds,
        iters=args.iters,
        jobs=args.jobs,
        threads=args.threads)


if __name__ == '__main__':
    sys.exit(main())
