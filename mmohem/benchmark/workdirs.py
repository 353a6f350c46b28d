"""Find the work dirs of each experiment's arms named by ``--work-dirs``.

Two spellings, mixable:

- ``arm=NAME:DIR[,DIR...] arm=NAME:DIR[,DIR...] ... [name=LABEL]``: an
  explicit experiment, one mmengine work dir per seed for each arm, the
  first arm being the baseline. ``NAME`` may hold ``:`` (the last one
  ends it), a ``DIR`` may not. An experiment ends at a ``ROOT`` entry, at
  a second ``name=`` or at an arm name it already has; ``name`` defaults to
  the baseline's config name.
- ``ROOT``: a folder laid out as ``tools/benchmark.py`` writes its runs,
  one experiment per model folder, one arm per folder in it::

      ROOT/<model>/baseline/<run>/   one mmengine work dir per seed
      ROOT/<model>/<arm>/<run>/      (or each <arm>/ is a work dir)

  ``baseline/`` is the baseline, the other folders holding work dirs are
  the arms, in sorted order, named as their folder. A ``ROOT`` that
  itself holds ``baseline/`` is one experiment.
"""
import glob
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from .logs import is_work_dir, read_work_dir
from .pairs import BASELINE_FOLDER
from .table import ArmRuns, ExperimentRuns

_KEYS = ('arm', 'name')
_USAGE = 'expected arm=NAME:DIR[,DIR...], name=LABEL or a ROOT folder'


@dataclass
class ArmDirs:
    """The work dirs of one arm.

    Attributes:
        name (str): The arm as the table shows it.
        dirs (list[str]): One work dir per seed.
    """

    name: str
    dirs: List[str]


@dataclass
class ExperimentDirs:
    """The work dirs of one experiment.

    Attributes:
        model (str): Label; empty for the baseline's config name.
        arms (list[ArmDirs]): ``arms[0]`` is the baseline.
    """

    model: str
    arms: List[ArmDirs] = field(default_factory=list)

    def read(self) -> ExperimentRuns:
        """Read every run of the experiment."""
        arms = [
            ArmRuns(arm.name, [read_work_dir(d) for d in arm.dirs])
            for arm in self.arms
        ]
        base = self.arms[0].dirs[0]
        model = self.model or arms[0].runs[0].config or osp.basename(
            osp.normpath(base))
        return ExperimentRuns(model, arms)


def parse_entries(entries: Sequence[str]) -> List[ExperimentDirs]:
    """Experiments named by the ``--work-dirs`` entries, in order.

    Raises:
        ValueError: On a malformed entry, an experiment without a baseline
            and another arm, or a folder holding no experiment; the
            message names the entry.
    """
    experiments: List[ExperimentDirs] = []
    current = ExperimentDirs('')
    for entry in entries:
        key, sep, value = entry.partition('=')
        if not sep or key not in _KEYS:
            experiments += _close(current) + discover(entry)
            current = ExperimentDirs('')
            continue
        arm = None if key == 'name' else _arm(value, entry)
        if _repeats(current, arm):
            experiments += _close(current)
            current = ExperimentDirs('')
        if arm is None:
            current.model = _nonempty(value, entry)
        else:
            current.arms.append(arm)
    return experiments + _close(current)


def discover(root: str) -> List[ExperimentDirs]:
    """Experiments of a folder laid out as ``ROOT/<model>/<arm>/``."""
    if not osp.isdir(root):
        raise ValueError(f'--work-dirs {root}: no such folder ({_USAGE}).')
    if _has_baseline(root):
        return [_layout_experiment(root)]
    found = [
        _layout_experiment(d) for d in sorted(glob.glob(osp.join(root, '*')))
        if _has_baseline(d)
    ]
    if not found:
        raise ValueError(
            f'--work-dirs {root}: no <model>/baseline/ folders found; see '
            'tools/benchmark.py --help for the layout.')
    return found


def runs_of(arm_dir: str) -> List[str]:
    """The work dirs of one arm: the folder itself, or its sub-folders
    that are work dirs (one per seed), sorted."""
    if is_work_dir(arm_dir):
        return [arm_dir]
    return sorted(
        d for d in glob.glob(osp.join(arm_dir, '*')) if is_work_dir(d))


def _has_baseline(path: str) -> bool:
    return osp.isdir(osp.join(path, BASELINE_FOLDER))


def _layout_experiment(path: str) -> ExperimentDirs:
    baseline = osp.join(path, BASELINE_FOLDER)
    if not runs_of(baseline):
        raise ValueError(f'--work-dirs: {baseline} holds no mmengine work '
                         'dir.')
    others = sorted(
        d for d in glob.glob(osp.join(path, '*'))
        if osp.isdir(d) and d != baseline and runs_of(d))
    if not others:
        raise ValueError(f'--work-dirs: {path} holds {BASELINE_FOLDER}/ but '
                         'no other arm folder with a work dir.')
    return ExperimentDirs(
        osp.basename(osp.normpath(path)),
        [ArmDirs(osp.basename(d), runs_of(d)) for d in [baseline] + others])


def _repeats(current: ExperimentDirs, arm: Optional[ArmDirs]) -> bool:
    """Whether ``arm`` (``None`` for a ``name=`` entry) starts another
    experiment: a second name, or an arm name ``current`` already has."""
    if arm is None:
        return bool(current.model)
    return any(a.name == arm.name for a in current.arms)


def _arm(value: str, entry: str) -> ArmDirs:
    """The arm of an ``arm=`` entry (``value`` follows the ``=``); its dirs
    checked."""
    name, sep, dirs = value.rpartition(':')
    if not sep:
        raise ValueError(f'--work-dirs {entry}: expected '
                         'arm=NAME:DIR[,DIR...].')
    name = _nonempty(name, entry)
    paths = [d for d in dirs.split(',') if d]
    if not paths:
        raise ValueError(f'--work-dirs {entry}: names no work dir.')
    for path in paths:
        if not is_work_dir(path):
            raise ValueError(f'--work-dirs {entry}: {path} is not an '
                             'mmengine work dir (no <timestamp>/ log in it).')
    return ArmDirs(name, paths)


def _nonempty(value: str, entry: str) -> str:
    if not value.strip():
        raise ValueError(f'--work-dirs {entry}: empty name.')
    return value


def _close(current: ExperimentDirs) -> List[ExperimentDirs]:
    """``[current]`` if it names anything, checked to be complete."""
    if not current.arms and not current.model:
        return []
    if len(current.arms) < 2:
        named = ', '.join(a.name for a in current.arms) or 'no arm'
        label = f' {current.model!r}' if current.model else ''
        raise ValueError(
            f'--work-dirs: experiment{label} has {named}; it needs a '
            'baseline and at least one other arm (arm=NAME:DIR each).')
    return [current]
