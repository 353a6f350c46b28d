"""Find the (baseline, OHEM) work dirs named by ``--work-dirs``.

Two spellings, mixable:

- ``base=DIR[,DIR...] ohem=DIR[,DIR...] [name=LABEL]``: an explicit pair,
  one mmengine work dir per seed on each side. A pair ends when a key
  repeats; ``name`` defaults to the baseline's config name.
- ``ROOT``: a folder laid out as ``tools/benchmark.py`` writes its runs,
  one pair per model folder::

      ROOT/<model>/baseline/<run>/   one mmengine work dir per seed
      ROOT/<model>/ohem/<run>/       (or baseline/ and ohem/ are work dirs)

  A ``ROOT`` that itself holds ``baseline/`` and ``ohem/`` is one pair.
"""
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Sequence

from .logs import is_work_dir, read_work_dir
from .table import PairRuns

SIDES = ('baseline', 'ohem')
_KEYS = ('base', 'ohem', 'name')


@dataclass
class PairDirs:
    """The work dirs of one pair.

    Attributes:
        model (str): Label; empty for the baseline's config name.
        baseline (list[str]): Baseline work dirs.
        ohem (list[str]): OHEM work dirs.
    """

    model: str
    baseline: List[str]
    ohem: List[str]

    def read(self) -> PairRuns:
        """Read every run of the pair."""
        base = [read_work_dir(d) for d in self.baseline]
        model = self.model or base[0].config or osp.basename(
            osp.normpath(self.baseline[0]))
        return PairRuns(model, base, [read_work_dir(d) for d in self.ohem])


def parse_entries(entries: Sequence[str]) -> List[PairDirs]:
    """Pairs named by the ``--work-dirs`` entries, in order.

    Raises:
        ValueError: On an incomplete pair or a folder holding no pair.
    """
    pairs: List[PairDirs] = []
    current: Dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition('=')
        if sep and key in _KEYS:
            if key in current:
                pairs.append(_explicit(current))
                current = {}
            current[key] = value
            continue
        if current:
            pairs.append(_explicit(current))
            current = {}
        pairs += discover(entry)
    if current:
        pairs.append(_explicit(current))
    return pairs


def discover(root: str) -> List[PairDirs]:
    """Pairs of a folder laid out as ``ROOT/<model>/{baseline,ohem}/``."""
    if _has_sides(root):
        return [_layout_pair(root)]
    pairs = [
        _layout_pair(d) for d in sorted(glob.glob(osp.join(root, '*')))
        if _has_sides(d)
    ]
    if not pairs:
        raise ValueError(
            f'{root}: no <model>/baseline/ and <model>/ohem/ folders found; '
            'see tools/benchmark.py --help for the --work-dirs layout.')
    return pairs


def runs_of(side_dir: str) -> List[str]:
    """The work dirs of one side: the folder itself, or its sub-folders
    that are work dirs (one per seed), sorted."""
    if is_work_dir(side_dir):
        return [side_dir]
    return sorted(
        d for d in glob.glob(osp.join(side_dir, '*')) if is_work_dir(d))


def _has_sides(path: str) -> bool:
    return all(osp.isdir(osp.join(path, side)) for side in SIDES)


def _layout_pair(path: str) -> PairDirs:
    runs = {side: runs_of(osp.join(path, side)) for side in SIDES}
    for side, dirs in runs.items():
        if not dirs:
            raise ValueError(f'{osp.join(path, side)} holds no mmengine '
                             'work dir.')
    return PairDirs(
        osp.basename(osp.normpath(path)), runs['baseline'], runs['ohem'])


def _explicit(spec: Dict[str, str]) -> PairDirs:
    missing = [k for k in ('base', 'ohem') if k not in spec]
    if missing:
        raise ValueError(
            f'--work-dirs: pair {spec} lacks {" and ".join(missing)}=DIR.')
    sides = {k: [d for d in spec[k].split(',') if d] for k in ('base', 'ohem')}
    for dirs in sides.values():
        for path in dirs:
            if not is_work_dir(path):
                raise ValueError(f'--work-dirs: {path} is not an mmengine '
                                 'work dir (no <timestamp>/ log in it).')
    return PairDirs(spec.get('name', ''), sides['base'], sides['ohem'])
