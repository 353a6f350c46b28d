"""Read what an mmengine run left in its work dir.

An mmengine work dir holds one ``<YYYYmmdd_HHMMSS>/`` folder per launch
(several after a resume, or a later ``tools/test.py``), each with

- ``vis_data/scalars.json``: one JSON object per line, ``step`` plus the
  logged scalars: training records carry ``lr`` (and ``loss``, ``time``,
  on GPU ``memory`` in MiB, the ``ohem_...`` mining statistics,
  ``candidate_loss``);
  evaluation records carry the metrics (``coco/bbox_mAP``, ``mIoU``, ...);
- ``<timestamp>.log``: the text log, read when ``scalars.json`` is missing;
- ``<timestamp>.json``: the metrics of a test run (``tools/test.py``).

``tools/benchmark.py`` adds ``mmohem_run.json`` at the top of the work dirs
it trains: the peak resident memory of the run's process, its wall time, the
environment it set (its torch threads) and how many runs ran at once.

The mining statistics were logged as ``ohem/<name>`` before they took flat
names (mmdet's ``analyze_logs.py`` reads a key holding ``/`` as a validation
metric); :func:`current_key` renames the old keys when a log is read, so old
and new logs read alike.
"""
import glob
import json
import os.path as osp
import re
from dataclasses import dataclass, field
from statistics import mean
from typing import Dict, Iterable, List, Optional, Tuple

from mmohem.utils import KEY_PREFIX

RUN_INFO = 'mmohem_run.json'
#: The environment variables that set a run's torch (and MKL) threads.
THREAD_VARS = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')
#: How the mining statistics' keys start in a log (``ohem_kept_pos``).
OHEM_PREFIX = KEY_PREFIX.split('/', 1)[1]
#: Old mining-statistic names that the writer renamed; the others kept
#: theirs.
LEGACY_OHEM_NAMES = {
    'num_pos': 'kept_pos',
    'num_neg': 'kept_neg',
    'num_kept': 'kept_pixels',
}
_LEGACY_OHEM_KEY = re.compile(r'^ohem/(?:(?P<stage>s\d+)\.)?(?P<name>\w+)$')
_OHEM_STAGE = re.compile(r'^s\d+_')
_NOT_METRICS = ('step', 'mode', 'time', 'data_time', 'iter', 'epoch', 'memory')
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
_LOG_LINE = re.compile(
    r'(?:Iter|Epoch)\((?P<mode>train|val|test)\)\s*'
    r'(?:\[\s*(?P<epoch>\d+)\])?\s*\[\s*(?P<iter>\d+)/(?P<total>\d+)\]'
    r'(?P<rest>.*)$')
_ETA = re.compile(r'eta:\s+(?:\d+ days?, )?\d+:\d\d:\d\d')
_KEY_VALUE = re.compile(
    r'(?P<key>[\w/.\-]+):\s+(?P<value>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'
    r'(?=\s|$)')


@dataclass
class RunLog:
    """The logged facts of one training run.

    Attributes:
        work_dir (str): The mmengine work dir.
        train (list[dict]): One record per logged training iteration, with
            its global iteration as ``step``.
        metrics (dict): The last evaluation's metrics.
        peak_rss_mib (float, optional): Peak resident memory of the run's
            process tree, from ``mmohem_run.json``.
        wall_s (float, optional): Wall time of the run, same source.
        threads (int, optional): The torch threads the run was given
            (its ``OMP_NUM_THREADS``), same source.
        concurrent_runs (int, optional): The most runs that ran at once
            while it ran, itself included, same source.
        config (str, optional): Name of the config the run dumped.
    """

    work_dir: str
    train: List[Dict[str, float]] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)
    peak_rss_mib: Optional[float] = None
    wall_s: Optional[float] = None
    threads: Optional[int] = None
    concurrent_runs: Optional[int] = None
    config: Optional[str] = None

    @property
    def iters(self) -> int:
        """Last logged training iteration."""
        return int(max((r['step'] for r in self.train), default=0))

    def sec_per_iter(self) -> Optional[float]:
        """Mean of the logged ``time`` after the first (warm-up) record."""
        times = [r['time'] for r in self.train if 'time' in r]
        return mean(times[1:] if len(times) > 1 else times) if times else None

    def memory(self) -> Tuple[Optional[float], str]:
        """Peak memory in MiB and its source.

        Returns:
            tuple[float | None, str]: The largest logged ``memory`` (CUDA
            memory allocated, logged by mmengine on GPU) with ``'cuda'``,
            else the peak RSS with ``'rss'``, else ``(None, '')``.
        """
        logged = [r['memory'] for r in self.train if 'memory' in r]
        if logged:
            return float(max(logged)), 'cuda'
        if self.peak_rss_mib is not None:
            return self.peak_rss_mib, 'rss'
        return None, ''

    def series(self, key: str) -> Tuple[List[float], List[float]]:
        """Steps and values of a training scalar."""
        points = [(r['step'], r[key]) for r in self.train if key in r]
        return [p[0] for p in points], [p[1] for p in points]

    def keys(self) -> List[str]:
        """Every training scalar logged, in first-seen order."""
        seen: Dict[str, None] = {}
        for record in self.train:
            seen.update(dict.fromkeys(record))
        return list(seen)


def launch_dirs(work_dir: str) -> List[str]:
    """The ``<timestamp>/`` folders of a work dir, oldest first."""
    return sorted(
        path for path in glob.glob(osp.join(work_dir, '*'))
        if osp.isdir(path) and _TIMESTAMP.match(osp.basename(path)))


def is_work_dir(path: str) -> bool:
    """Whether ``path`` is an mmengine work dir with a log."""
    return any(
        osp.isfile(osp.join(d, 'vis_data', 'scalars.json'))
        or osp.isfile(osp.join(d, f'{osp.basename(d)}.log'))
        for d in launch_dirs(path))


def read_work_dir(work_dir: str) -> RunLog:
    """Training curves, final metrics, time and memory of a work dir.

    Args:
        work_dir (str): An mmengine work dir.

    Returns:
        RunLog: What its launches logged, merged in launch order (a resumed
        run's records replace those of the same step).

    Raises:
        FileNotFoundError: If no launch of ``work_dir`` left a log.
    """
    if not is_work_dir(work_dir):
        raise FileNotFoundError(
            f'{work_dir} is not an mmengine work dir: no '
            '<timestamp>/vis_data/scalars.json nor <timestamp>/<timestamp>'
            '.log under it.')
    train: Dict[float, Dict[str, float]] = {}
    metrics: Dict[str, float] = {}
    for launch in launch_dirs(work_dir):
        records = _launch_records(launch)
        train.update((r['step'], r) for r in records if r['mode'] == 'train')
        evals = [r for r in records if r['mode'] != 'train']
        if evals:
            metrics = _metrics_of(evals[-1])
    run = RunLog(
        work_dir, [_scalars_of(train[s]) for s in sorted(train)],
        metrics,
        config=_config_name(work_dir))
    _read_run_info(run)
    return run


def read_scalars(path: str) -> List[Dict[str, float]]:
    """Records of a ``scalars.json``, each tagged ``mode`` train or val.

    Training records are those with a learning rate (``lr`` or a key
    ending in ``lr``); the others are evaluation records.
    """
    records = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                train = any(k == 'lr' or k.endswith('_lr') for k in record)
                record['mode'] = 'train' if train else 'val'
                records.append(record)
    return records


def current_key(key: str) -> str:
    """The key a logged scalar has today.

    An old mining statistic ``ohem/[s<k>.]<name>`` becomes
    ``ohem_[s<k>_]<name>``, its name renamed by :data:`LEGACY_OHEM_NAMES`
    (``ohem/num_pos`` -> ``ohem_kept_pos``, ``ohem/s1.num_neg`` ->
    ``ohem_s1_kept_neg``); every other key is returned unchanged.
    """
    match = _LEGACY_OHEM_KEY.match(key)
    if match is None:
        return key
    stage = f'{match["stage"]}_' if match['stage'] else ''
    name = LEGACY_OHEM_NAMES.get(match['name'], match['name'])
    return f'{OHEM_PREFIX}{stage}{name}'


def ohem_name(key: str) -> Optional[str]:
    """The statistic of a mining-statistic key without prefix and cascade
    stage (``ohem_s1_kept_pos`` -> ``kept_pos``); ``None`` for another
    key."""
    if not key.startswith(OHEM_PREFIX):
        return None
    return _OHEM_STAGE.sub('', key[len(OHEM_PREFIX):])


def train_progress(text: str) -> Optional[Tuple[int, int, str]]:
    """Where the last training line of an mmengine text log stands.

    Args:
        text (str): The log so far.

    Returns:
        tuple[int, int, str] | None: Iteration, total and ETA (``'?'``
        when the line has none), or ``None`` before the first training
        line.
    """
    last = None
    for line in text.splitlines():
        match = _LOG_LINE.search(line)
        if match and match['mode'] == 'train':
            last = match
    if last is None:
        return None
    eta = _ETA.search(last['rest'])
    return (int(last['iter']), int(last['total']),
            eta.group(0).split(':', 1)[1].strip() if eta else '?')


def parse_log_lines(lines: Iterable[str]) -> List[Dict[str, float]]:
    """Records of an mmengine text log, each tagged ``mode``.

    Reads the lines ``Iter(train) [10/400] lr: ... loss: ...`` and
    ``Epoch(val) [12][625/625] coco/bbox_mAP: ...``; the step of an
    epoch-based training line is ``(epoch - 1) * iters_per_epoch + iter``.
    """
    records = []
    for line in lines:
        match = _LOG_LINE.search(line)
        if not match:
            continue
        record: Dict[str, float] = {
            m['key']: float(m['value'])
            for m in _KEY_VALUE.finditer(_ETA.sub('', match['rest']))
        }
        step = int(match['iter'])
        if match['epoch'] and match['mode'] == 'train':
            step += (int(match['epoch']) - 1) * int(match['total'])
        record.update(step=step, mode=match['mode'])
        records.append(record)
    return records


def _launch_records(launch: str) -> List[Dict[str, float]]:
    """Records of one launch: scalars.json, else the text log; plus the
    test metrics file of a test launch."""
    name = osp.basename(launch)
    scalars = osp.join(launch, 'vis_data', 'scalars.json')
    text_log = osp.join(launch, f'{name}.log')
    if osp.isfile(scalars):
        records = read_scalars(scalars)
    elif osp.isfile(text_log):
        with open(text_log, encoding='utf-8', errors='replace') as f:
            records = [
                r for r in parse_log_lines(f)
                if r['mode'] == 'train' or _metrics_of(r)
            ]
    else:
        records = []
    test_json = osp.join(launch, f'{name}.json')
    if osp.isfile(test_json):
        with open(test_json, encoding='utf-8') as f:
            records.append(dict(json.load(f), mode='test'))
    return [{current_key(k): v for k, v in r.items()} for r in records]


def _scalars_of(record: Dict[str, float]) -> Dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if k != 'mode' and isinstance(v, (int, float))
    }


def _metrics_of(record: Dict[str, float]) -> Dict[str, float]:
    """Evaluation metrics of a record, without step, timing and memory."""
    return {
        k: float(v)
        for k, v in record.items()
        if isinstance(v, (int, float)) and k not in _NOT_METRICS
    }


def _config_name(work_dir: str) -> Optional[str]:
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    return osp.splitext(osp.basename(configs[0]))[0] if configs else None


def _read_run_info(run: RunLog) -> None:
    path = osp.join(run.work_dir, RUN_INFO)
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            info = json.load(f)
        run.peak_rss_mib = info.get('peak_rss_mib')
        run.wall_s = info.get('wall_s')
        threads = info.get('env', {}).get(THREAD_VARS[0])
        run.threads = None if threads is None else int(threads)
        run.concurrent_runs = info.get('concurrent_runs')
