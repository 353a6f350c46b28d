"""The benchmark figure: metric bars, loss curves and OHEM mining statistics.

Top row: the headline metric of every table row, baseline vs OHEM, with
the seeds' standard deviation as error bars. Then one row per pair: the
training loss of both sides, and the ``ohem/...`` scalars the OHEM runs
logged, grouped by kind (kept counts, mean losses, rates).
"""
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from .logs import RunLog  # noqa: E402
from .table import PairRuns, Row  # noqa: E402

OHEM_PREFIX = 'ohem/'
_GROUPS = ('kept examples', 'mean loss', 'rate / other')
_COLOURS = {'baseline': 'tab:blue', 'OHEM': 'tab:orange'}


def ohem_groups(keys: Sequence[str]) -> Dict[str, List[str]]:
    """``ohem/...`` keys grouped for plotting.

    ``num_*`` keys are counts of kept examples, keys holding ``loss`` are
    mean losses, the rest (``nms_suppressed``, ``kept_fraction``, ...) are
    rates or other statistics.
    """
    groups: Dict[str, List[str]] = {name: [] for name in _GROUPS}
    for key in keys:
        if not key.startswith(OHEM_PREFIX):
            continue
        name = key[len(OHEM_PREFIX):].split('.')[-1]
        group = (
            _GROUPS[0] if name.startswith('num') else
            _GROUPS[1] if 'loss' in name else _GROUPS[2])
        groups[group].append(key)
    return {name: keys for name, keys in groups.items() if keys}


def save_figure(rows: Sequence[Row], pairs: Sequence[PairRuns],
                path: str) -> None:
    """Draw the figure and write it as a PNG.

    Args:
        rows (Sequence[Row]): The table rows (for the bars).
        pairs (Sequence[PairRuns]): The runs (for the curves).
        path (str): Output PNG path.
    """
    columns = 1 + len(_GROUPS)
    fig, axes = plt.subplots(
        1 + len(pairs),
        columns,
        figsize=(4.2 * columns, 3.2 * (1 + len(pairs))),
        squeeze=False)
    _metric_bars(fig, axes[0], rows)
    for idx, pair in enumerate(pairs):
        _pair_curves(axes[idx + 1], pair)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _metric_bars(fig: plt.Figure, axes: Sequence[plt.Axes],
                 rows: Sequence[Row]) -> None:
    for ax in axes[1:]:
        fig.delaxes(ax)
    ax = axes[0]
    width = 0.38
    for offset, side in ((-width / 2, 'baseline'), (width / 2, 'OHEM')):
        stats = [
            row.baseline if side == 'baseline' else row.ohem for row in rows
        ]
        ax.bar([i + offset for i in range(len(rows))],
               [s.mean or 0 for s in stats],
               width,
               yerr=[s.std or 0 for s in stats],
               capsize=3,
               label=side,
               color=_COLOURS[side])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f'{r.model}\n{r.metric}' for r in rows], fontsize=7)
    ax.set_title('headline metric (mean ± std over seeds)')
    ax.legend(fontsize=8)


def _pair_curves(axes: Sequence[plt.Axes], pair: PairRuns) -> None:
    for side, runs in (('baseline', pair.baseline), ('OHEM', pair.ohem)):
        for seed, run in enumerate(runs):
            steps, loss = run.series('loss')
            axes[0].plot(
                steps,
                loss,
                color=_COLOURS[side],
                alpha=0.8,
                lw=1,
                label=side if seed == 0 else None)
    axes[0].set_title(f'{pair.model}: training loss', fontsize=9)
    axes[0].set_xlabel('iteration')
    axes[0].legend(fontsize=8)
    groups = ohem_groups(_all_keys(pair.ohem))
    for ax, group in zip(axes[1:], _GROUPS):
        if group not in groups:
            ax.set_axis_off()
            ax.set_title(f'OHEM {group}: not logged', fontsize=8)
            continue
        for idx, key in enumerate(groups[group]):
            for seed, run in enumerate(pair.ohem):
                steps, values = run.series(key)
                ax.plot(
                    steps,
                    values,
                    lw=1,
                    alpha=0.8,
                    color=f'C{idx}',
                    label=key if seed == 0 else None)
        ax.set_title(f'OHEM {group}', fontsize=9)
        ax.set_xlabel('iteration')
        ax.legend(fontsize=7)


def _all_keys(runs: Sequence[RunLog]) -> List[str]:
    keys: Dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.keys()))
    return list(keys)
