"""Compare baseline and OHEM runs: mean ± std over seeds, delta, verdict.

One row per pair and per headline metric both sides logged
(:data:`METRICS`): COCO bbox / mask mAP (shown x100), mIoU (already in %).
"""
import math
from dataclasses import asdict, dataclass, field
from statistics import mean, stdev
from typing import Dict, List, Optional, Sequence, Tuple

from mmohem.utils import markdown_table as write_markdown_table
from .logs import RunLog


@dataclass(frozen=True)
class Metric:
    """A headline metric.

    Attributes:
        key (str): Its key in the logs.
        label (str): Its name in the table.
        task (str): The task it measures.
        scale (float): Factor from the logged value to the shown one.
        decimals (int): Decimals shown.
    """

    key: str
    label: str
    task: str
    scale: float
    decimals: int


METRICS: Tuple[Metric, ...] = (
    Metric('coco/bbox_mAP', 'bbox mAP', 'detection', 100, 1),
    Metric('coco/segm_mAP', 'mask mAP', 'instance segmentation', 100, 1),
    Metric('mIoU', 'mIoU', 'semantic segmentation', 1, 2),
    Metric('pascal_voc/mAP', 'VOC mAP', 'detection', 100, 1),
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
class PairRuns:
    """The runs of one pair.

    Attributes:
        model (str): The model as the table shows it.
        baseline (list[RunLog]): Baseline runs, one per seed.
        ohem (list[RunLog]): OHEM runs, one per seed.
    """

    model: str
    baseline: List[RunLog] = field(default_factory=list)
    ohem: List[RunLog] = field(default_factory=list)


@dataclass
class Row:
    """One line of the table."""

    task: str
    model: str
    metric: str
    decimals: int
    baseline: Stat
    ohem: Stat
    sec_per_iter: Tuple[Stat, Stat]
    memory_mib: Tuple[Stat, Stat]
    memory_source: str

    @property
    def delta(self) -> Optional[float]:
        """OHEM mean minus baseline mean."""
        if self.baseline.mean is None or self.ohem.mean is None:
            return None
        return self.ohem.mean - self.baseline.mean

    @property
    def verdict(self) -> str:
        """Who wins, and whether the gap exceeds the seed noise."""
        delta = self.delta
        if delta is None:
            return 'no result'
        rounded = round(delta, self.decimals)
        winner = ('OHEM better' if rounded > 0 else
                  'baseline better' if rounded < 0 else 'tie')
        noise = _standard_error(self.baseline, self.ohem)
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


def build_rows(pairs: Sequence[PairRuns]) -> List[Row]:
    """Rows for every headline metric logged by both sides of each pair."""
    rows = []
    for pair in pairs:
        for metric in METRICS:
            base = _values(pair.baseline, metric)
            ohem = _values(pair.ohem, metric)
            if base or ohem:
                rows.append(_row(pair, metric, base, ohem))
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    """The comparison as a Markdown table (with a header naming the
    memory source)."""
    sources = {row.memory_source for row in rows if row.memory_source}
    memory = (
        MEMORY_HEADERS[sources.pop()]
        if len(sources) == 1 else 'memory MiB (rss: peak RSS, cuda: GPU)')
    header = [
        'task', 'model', 'metric', 'baseline', 'OHEM', 'Δ (OHEM − baseline)',
        'verdict', 's/iter (baseline / OHEM)', f'{memory} (baseline / OHEM)'
    ]
    mixed = len({r.memory_source for r in rows}) > 1
    return write_markdown_table(header, [_cells(row, mixed) for row in rows])


def _cells(row: Row, mixed_memory: bool) -> List[str]:
    delta = 'n/a' if row.delta is None else f'{row.delta:+.{row.decimals}f}'
    suffix = f' ({row.memory_source})' if mixed_memory else ''
    return [
        row.task,
        row.model,
        row.metric,
        row.baseline.format(row.decimals),
        row.ohem.format(row.decimals),
        delta,
        row.verdict,
        ' / '.join(s.format(3) for s in row.sec_per_iter),
        ' / '.join(s.format(0) for s in row.memory_mib) + suffix,
    ]


def _row(pair: PairRuns, metric: Metric, base: List[float],
         ohem: List[float]) -> Row:
    speed = tuple(
        Stat([t for t in (r.sec_per_iter() for r in runs) if t is not None])
        for runs in (pair.baseline, pair.ohem))
    memories = [[r.memory() for r in runs]
                for runs in (pair.baseline, pair.ohem)]
    sources = {src for side in memories for _, src in side if src}
    return Row(
        task=metric.task,
        model=pair.model,
        metric=metric.label,
        decimals=metric.decimals,
        baseline=Stat([v * metric.scale for v in base]),
        ohem=Stat([v * metric.scale for v in ohem]),
        sec_per_iter=speed,
        memory_mib=tuple(
            Stat([m for m, _ in side if m is not None]) for side in memories),
        memory_source='/'.join(sorted(sources)))


def _values(runs: Sequence[RunLog], metric: Metric) -> List[float]:
    return [r.metrics[metric.key] for r in runs if metric.key in r.metrics]


def _standard_error(a: Stat, b: Stat) -> Optional[float]:
    """Standard error of the difference of two means, if both have std."""
    if a.std is None or b.std is None:
        return None
    return math.sqrt(a.std**2 / len(a.values) + b.std**2 / len(b.values))


def run_summary(run: RunLog) -> Dict[str, object]:
    """JSON facts of one run."""
    memory, source = run.memory()
    return dict(
        work_dir=run.work_dir,
        config=run.config,
        iters=run.iters,
        metrics=run.metrics,
        sec_per_iter=run.sec_per_iter(),
        memory_mib=memory,
        memory_source=source,
        wall_s=run.wall_s)
