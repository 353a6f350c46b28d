"""Compare the arms of each experiment with its baseline: mean ± std over
seeds, delta, verdict.

Long format: one row per experiment, metric some arm logged
(:data:`METRICS`) and arm, the baseline first.
"""
import math
from dataclasses import asdict, dataclass, field
from statistics import mean, stdev
from typing import Dict, List, Optional, Sequence, Tuple

from mmohem.hooks import LOG_KEY as CANDIDATE_LOSS
from mmohem.utils import markdown_table as write_markdown_table
from .logs import OHEM_PREFIX, RunLog

TRAIN_WINDOW = 100
NO_DELTA = '—'


@dataclass(frozen=True)
class Metric:
    """A headline metric.

    Attributes:
        key (str): Its key in the logs.
        label (str): Its name in the table.
        task (str): The task it measures; empty for a training metric,
            whose rows take the task of the experiment's evaluation
            metrics.
        scale (float): Factor from the logged value to the shown one.
        decimals (int): Decimals shown.
        higher_is_better (bool): The direction of a gain.
        source (str): ``'eval'``: the run's last evaluation; ``'train'``:
            the mean of the training values logged in the run's last
            :data:`TRAIN_WINDOW` iterations; ``'run'``: the mean of every
            logged training value (each log line is the mean of its
            window, so this is the mean over the run).
    """

    key: str
    label: str
    task: str
    scale: float
    decimals: int
    higher_is_better: bool = True
    source: str = 'eval'

    def value(self, run: RunLog) -> Optional[float]:
        """The metric of one run, unscaled; ``None`` if not logged."""
        if self.source == 'eval':
            return run.metrics.get(self.key)
        steps, values = run.series(self.key)
        first = run.iters - TRAIN_WINDOW if self.source == 'train' else 0
        kept = [v for s, v in zip(steps, values) if s > first]
        return mean(kept) if kept else None


METRICS = (
    Metric('coco/bbox_mAP', 'bbox mAP', 'detection', 100, 1),
    Metric('coco/segm_mAP', 'mask mAP', 'instance segmentation', 100, 1),
    Metric('mIoU', 'mIoU', 'semantic segmentation', 1, 2),
    Metric('pascal_voc/mAP', 'VOC mAP', 'detection', 100, 1),
    Metric('coco/star_precision', 'star AP (rare class)', 'detection', 100, 1),
    Metric('coco/bbox_mAP_s', 'small AP', 'detection', 100, 1),
    Metric(
        'distractor/fp_per_img',
        'distractor FP / image',
        'detection',
        1,
        2,
        higher_is_better=False),
    Metric(
        'distractor/pixel_fp',
        'distractor pixels claimed %',
        'semantic segmentation',
        1,
        2,
        higher_is_better=False),
    Metric(
        CANDIDATE_LOSS,
        f'loss over all candidates (last {TRAIN_WINDOW} iters)',
        '',
        1,
        3,
        higher_is_better=False,
        source='train'),
    Metric(
        f'{OHEM_PREFIX}no_pos_images',
        'images keeping no positive % (whole run)',
        '',
        100,
        1,
        higher_is_better=False,
        source='run'),
)
MEMORY_HEADERS = {
    'rss': 'peak RSS MiB',
    'cuda': 'GPU memory MiB',
}


@dataclass
class Stat:
    """Mean and sample standard deviation of a few values.

    Attributes:
        values (list[float]): One per seed.
    """

    values: List[float]

    @property
    def mean(self) -> Optional[float]:
        """Mean, ``None`` without values."""
        return mean(self.values) if self.values else None

    @property
    def std(self) -> Optional[float]:
        """Sample standard deviation, ``None`` under two values."""
        return stdev(self.values) if len(self.values) > 1 else None

    def format(self, decimals: int) -> str:
        """``mean ± std``, ``mean`` for one value, ``n/a`` for none."""
        if self.mean is None:
            return 'n/a'
        text = f'{self.mean:.{decimals}f}'
        if self.std is None:
            return text
        return f'{text} ± {self.std:.{decimals}f}'


@dataclass
class ArmRuns:
    """The runs of one arm.

    Attributes:
        name (str): The arm as the table shows it.
        runs (list[RunLog]): One per seed.
    """

    name: str
    runs: List[RunLog] = field(default_factory=list)


@dataclass
class ExperimentRuns:
    """The runs of one experiment.

    Attributes:
        model (str): The model as the table shows it.
        arms (list[ArmRuns]): ``arms[0]`` is the baseline.
    """

    model: str
    arms: List[ArmRuns]


@dataclass
class Row:
    """One line of the table: one metric of one arm.

    Attributes:
        task (str): The task of the metric.
        model (str): The experiment's model.
        metric (str): The metric's label.
        arm (str): The arm's name.
        decimals (int): Decimals shown.
        higher_is_better (bool): The metric's direction.
        value (Stat): The arm's values, scaled, one per seed.
        baseline (Stat, optional): The baseline's; ``None`` on the
            baseline's own row.
        sec_per_iter (Stat): The arm's seconds per iteration.
        memory_mib (Stat): The arm's peak memory.
        memory_source (str): ``'rss'``, ``'cuda'``, both joined by ``/``
            or empty.
    """

    task: str
    model: str
    metric: str
    arm: str
    decimals: int
    higher_is_better: bool
    value: Stat
    baseline: Optional[Stat]
    sec_per_iter: Stat
    memory_mib: Stat
    memory_source: str

    @property
    def delta(self) -> Optional[float]:
        """The arm's mean minus the baseline's."""
        if self.baseline is None or None in (self.baseline.mean,
                                             self.value.mean):
            return None
        return self.value.mean - self.baseline.mean

    @property
    def verdict(self) -> str:
        """Who wins, in the metric's direction, and whether the gap exceeds
        the seed noise."""
        if self.baseline is None:
            return NO_DELTA
        delta = self.delta
        if delta is None:
            return 'no result'
        rounded = round(delta, self.decimals)
        gain = rounded if self.higher_is_better else -rounded
        winner = (f'{self.arm} better'
                  if gain > 0 else 'baseline better' if gain < 0 else 'tie')
        noise = _standard_error(self.baseline, self.value)
        if noise is None:
            return f'{winner} (1 seed, noise unknown)' if rounded else winner
        if abs(delta) <= 2 * noise:
            return f'{winner}, within noise (Δ within 2 SE)'
        return winner

    def to_dict(self) -> dict:
        """JSON form, with the derived delta and verdict."""
        out = asdict(self)
        out.update(delta=self.delta, verdict=self.verdict)
        return out


def build_rows(experiments: Sequence[ExperimentRuns]) -> List[Row]:
    """Rows of every metric that some arm of an experiment logged, one per
    arm, the baseline first."""
    rows = []
    for experiment in experiments:
        task = _task(experiment)
        for metric in METRICS:
            values = [[v * metric.scale for v in _values(arm.runs, metric)]
                      for arm in experiment.arms]
            if any(values):
                rows += _rows(experiment, metric, metric.task or task, values)
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    """The comparison as a Markdown table (with a header naming the
    memory source)."""
    sources = {row.memory_source for row in rows if row.memory_source}
    memory = (
        MEMORY_HEADERS[sources.pop()]
        if len(sources) == 1 else 'memory MiB (rss: peak RSS, cuda: GPU)')
    header = [
        'task', 'model', 'metric', 'arm', 'value', 'Δ vs baseline', 'verdict',
        's/iter', memory
    ]
    mixed = len({r.memory_source for r in rows}) > 1
    return write_markdown_table(header, [_cells(row, mixed) for row in rows])


def run_summary(run: RunLog) -> Dict[str, object]:
    """JSON facts of one run."""
    memory, source = run.memory()
    train = {m.key: m.value(run) for m in METRICS if m.source == 'train'}
    return dict(
        work_dir=run.work_dir,
        config=run.config,
        iters=run.iters,
        metrics=run.metrics,
        train_metrics={
            k: v
            for k, v in train.items() if v is not None
        },
        sec_per_iter=run.sec_per_iter(),
        memory_mib=memory,
        memory_source=source,
        wall_s=run.wall_s,
        threads=run.threads,
        concurrent_runs=run.concurrent_runs)


def _cells(row: Row, mixed_memory: bool) -> List[str]:
    delta = (
        NO_DELTA if row.baseline is None else
        'n/a' if row.delta is None else f'{row.delta:+.{row.decimals}f}')
    suffix = f' ({row.memory_source})' if mixed_memory else ''
    return [
        row.task, row.model, row.metric, row.arm,
        row.value.format(row.decimals), delta, row.verdict,
        row.sec_per_iter.format(3),
        row.memory_mib.format(0) + suffix
    ]


def _rows(experiment: ExperimentRuns, metric: Metric, task: str,
          values: List[List[float]]) -> List[Row]:
    """One row per arm of one metric; ``values`` are the arms' scaled
    values."""
    baseline = Stat(values[0])
    return [
        Row(task, experiment.model,
            metric.label, arm.name, metric.decimals, metric.higher_is_better,
            Stat(arm_values), None if idx == 0 else baseline,
            *_costs(arm.runs))
        for idx, (arm, arm_values) in enumerate(zip(experiment.arms, values))
    ]


def _costs(runs: Sequence[RunLog]) -> Tuple[Stat, Stat, str]:
    """Seconds per iteration, peak memory (MiB) and its source of an arm's
    runs."""
    speeds = [r.sec_per_iter() for r in runs]
    memories = [r.memory() for r in runs]
    return (Stat([t for t in speeds if t is not None]),
            Stat([m for m, _ in memories if m is not None]),
            '/'.join(sorted({src
                             for _, src in memories if src})))


def _task(experiment: ExperimentRuns) -> str:
    """The task of the experiment's first evaluation metric logged."""
    return next((m.task for m in METRICS if m.source == 'eval' and any(
        _values(arm.runs, m) for arm in experiment.arms)), 'n/a')


def _values(runs: Sequence[RunLog], metric: Metric) -> List[float]:
    return [v for v in (metric.value(r) for r in runs) if v is not None]


def _standard_error(a: Stat, b: Stat) -> Optional[float]:
    """Standard error of the difference of two means, if both have std."""
    if a.std is None or b.std is None:
        return None
    return math.sqrt(a.std**2 / len(a.values) + b.std**2 / len(b.values))
