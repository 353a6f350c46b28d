"""The benchmark figure: metric bars, loss curves and OHEM mining statistics.

First the metric panels, one per experiment and metric of the table: a bar
per arm, with the seeds' standard deviation as error bars. Then one row
per experiment: the training loss of every arm, the loss over all
candidates of every arm (baselines included), and the ``ohem_...`` mining
statistics of the arms that log them, grouped by kind (kept counts, mean
losses, rates). An arm keeps its colour (``C<index>``, the baseline ``C0``) in
every panel of its experiment.
"""
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from .logs import RunLog, ohem_name  # noqa: E402
from .table import CANDIDATE_LOSS, ArmRuns, ExperimentRuns, Row  # noqa

#: The mining statistics that count kept examples (per image).
COUNTS = ('kept_pos', 'kept_neg', 'kept_pixels')
_GROUPS = ('kept examples', 'mean loss', 'rate / other')
_CURVES = (('loss', 'training loss'),
           (CANDIDATE_LOSS, f'loss over all candidates ({CANDIDATE_LOSS})'))
_COLUMNS = len(_CURVES) + len(_GROUPS)
_LINESTYLES = ('-', '--', ':', '-.')


def ohem_groups(keys: Sequence[str]) -> Dict[str, List[str]]:
    """Mining-statistic keys (``ohem_...``) grouped for plotting.

    :data:`COUNTS` are counts of kept examples, statistics holding ``loss``
    are mean losses, the rest (``nms_suppressed``, ``kept_fraction``, ...)
    are rates or other statistics; other keys are left out.
    """
    groups: Dict[str, List[str]] = {name: [] for name in _GROUPS}
    for key in keys:
        name = ohem_name(key)
        if name is None:
            continue
        group = (
            _GROUPS[0] if name in COUNTS else
            _GROUPS[1] if 'loss' in name else _GROUPS[2])
        groups[group].append(key)
    return {name: keys for name, keys in groups.items() if keys}


def save_figure(rows: Sequence[Row], experiments: Sequence[ExperimentRuns],
                path: str) -> None:
    """Draw the figure and write it as a PNG.

    Args:
        rows (Sequence[Row]): The table rows (for the bars).
        experiments (Sequence[ExperimentRuns]): The runs (for the curves).
        path (str): Output PNG path.
    """
    panels = _metric_panels(rows)
    bar_rows = -(-len(panels) // _COLUMNS)
    fig, axes = plt.subplots(
        bar_rows + len(experiments),
        _COLUMNS,
        figsize=(4.2 * _COLUMNS, 3.4 * (bar_rows + len(experiments))),
        squeeze=False)
    bar_axes = axes[:bar_rows].ravel()
    for ax, panel in zip(bar_axes, panels):
        _metric_bars(ax, panel)
    for ax in bar_axes[len(panels):]:
        fig.delaxes(ax)
    for idx, experiment in enumerate(experiments):
        _experiment_curves(axes[bar_rows + idx], experiment)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _metric_panels(rows: Sequence[Row]) -> List[List[Row]]:
    """The rows grouped by (model, metric), in table order."""
    panels: Dict[Tuple[str, str], List[Row]] = {}
    for row in rows:
        panels.setdefault((row.model, row.metric), []).append(row)
    return list(panels.values())


def _metric_bars(ax: plt.Axes, rows: Sequence[Row]) -> None:
    """One bar per arm of one (model, metric)."""
    errors = [r.value.std or 0 for r in rows]
    ax.bar(
        range(len(rows)), [r.value.mean or 0 for r in rows],
        yerr=errors if any(errors) else None,
        capsize=3,
        color=[f'C{i}' for i in range(len(rows))])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.arm for r in rows], fontsize=7, rotation=15)
    better = 'higher' if rows[0].higher_is_better else 'lower'
    ax.set_title(
        f'{rows[0].model}\n{rows[0].metric} ({better} is better)', fontsize=8)


def _experiment_curves(axes: Sequence[plt.Axes],
                       experiment: ExperimentRuns) -> None:
    """Loss and candidate-loss curves of every arm, then the mining
    statistics of the arms that log them."""
    for ax, (key, title) in zip(axes, _CURVES):
        drawn = False
        for idx, arm in enumerate(experiment.arms):
            drawn |= _plot_runs(ax, arm.runs, key, f'C{idx}', '-', arm.name)
        _finish(ax, f'{experiment.model}: {title}', drawn)
    groups = ohem_groups(
        _all_keys([run for arm in experiment.arms for run in arm.runs]))
    for ax, group in zip(axes[len(_CURVES):], _GROUPS):
        drawn = False
        for idx, key in enumerate(groups.get(group, [])):
            for style, arm in zip(_LINESTYLES, _mining_arms(experiment)):
                drawn |= _plot_runs(ax, arm.runs, key, f'C{idx}', style,
                                    f'{arm.name}: {key}')
        _finish(ax, f'{experiment.model}: OHEM {group}', drawn)


def _plot_runs(ax: plt.Axes, runs: Sequence[RunLog], key: str, colour: str,
               style: str, label: str) -> bool:
    """Draw ``key`` of every seed; return whether any was logged."""
    drawn = False
    for run in runs:
        steps, values = run.series(key)
        if steps:
            ax.plot(
                steps,
                values,
                color=colour,
                ls=style,
                lw=1,
                alpha=0.8,
                label=None if drawn else label)
            drawn = True
    return drawn


def _finish(ax: plt.Axes, title: str, drawn: bool) -> None:
    if not drawn:
        ax.set_axis_off()
        ax.set_title(f'{title}: not logged', fontsize=8)
        return
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('iteration')
    ax.legend(fontsize=7)


def _mining_arms(experiment: ExperimentRuns) -> List[ArmRuns]:
    """The arms that log mining statistics."""
    return [
        arm for arm in experiment.arms if any(
            ohem_name(k) is not None for k in _all_keys(arm.runs))
    ]


def _all_keys(runs: Sequence[RunLog]) -> List[str]:
    keys: Dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.keys()))
    return list(keys)
