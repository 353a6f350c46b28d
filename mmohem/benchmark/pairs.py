"""The demo experiments (a baseline config and its peers, the *arms*) and
the overrides a benchmark run needs.

An arm is runnable when every ``mmohem.X`` type its config names is
registered; an arm whose part is not written yet is skipped, not failed,
and so is an experiment left with its baseline alone.
"""
import os.path as osp
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config

BASELINE_FOLDER = 'baseline'


@dataclass(frozen=True)
class Arm:
    """One config of an experiment.

    Attributes:
        name (str): The arm as the table shows it, e.g. ``'mmdet OHEM'``.
        config (str): Its config, relative to the repository.
    """

    name: str
    config: str

    @property
    def slug(self) -> str:
        """``name`` made folder-safe: every run of other characters than
        letters and digits becomes one ``-`` (``'mmdet OHEM'`` ->
        ``'mmdet-OHEM'``)."""
        return re.sub(r'[^A-Za-z0-9]+', '-', self.name).strip('-')


@dataclass(frozen=True)
class Experiment:
    """A baseline and the arms compared with it on one model.

    Attributes:
        key (str): Short name, used on the command line and as folder name.
        model (str): The model as the table shows it.
        arms (tuple[Arm, ...]): ``arms[0]`` is the baseline; at least one
            more arm follows.
        default (bool): Whether ``--demo`` runs it without
            ``--experiments`` (``make demo``'s budget).
    """

    key: str
    model: str
    arms: Tuple[Arm, ...]
    default: bool = True

    def __post_init__(self) -> None:
        folders = self.folders()
        if len(self.arms) < 2 or len(set(folders)) != len(folders):
            raise ValueError(
                f'experiment {self.key}: needs a baseline and at least one '
                f'more arm, with distinct folders, got {folders}.')

    def folders(self) -> Tuple[str, ...]:
        """The run folder of each arm: ``baseline`` for the baseline (the
        name ``--work-dirs ROOT`` looks for), the slug for the others."""
        return (BASELINE_FOLDER, ) + tuple(a.slug for a in self.arms[1:])


DEMO_EXPERIMENTS: Tuple[Experiment, ...] = (
    Experiment('faster_rcnn', 'Faster R-CNN R18-tiny FPN', (
        Arm('baseline', 'configs/demo/faster-rcnn_r18-tiny_fpn_demo.py'),
        Arm('mmdet OHEM',
            'configs/demo/faster-rcnn_r18-tiny_fpn_mmdet-ohem_demo.py'),
        Arm('mmohem OHEM',
            'configs/demo/faster-rcnn_r18-tiny_fpn_ohem_demo.py'),
    )),
    Experiment('pspnet', 'PSPNet R18-tiny-D8', (
        Arm('baseline', 'configs/demo/pspnet_r18-tiny-d8_demo.py'),
        Arm('mmseg OHEM',
            'configs/demo/pspnet_r18-tiny-d8_mmseg-ohem_demo.py'),
        Arm('mmohem OHEM', 'configs/demo/pspnet_r18-tiny-d8_ohem_demo.py'),
    )),
    Experiment('ssd', 'SSDlite MobileNetV2-tiny', (
        Arm('baseline (3:1 mining)',
            'configs/demo/ssdlite_mobilenetv2-tiny_demo.py'),
        Arm('mmohem OHEM',
            'configs/demo/ssdlite_mobilenetv2-tiny_ohem_demo.py'),
        Arm('mmohem OHEM + positive quota',
            'configs/demo/ssdlite_mobilenetv2-tiny_ohem-posquota_demo.py'),
    )),
    Experiment(
        'retinanet',
        'RetinaNet R18-tiny FPN', (
            Arm('focal loss', 'configs/demo/retinanet_r18-tiny_fpn_demo.py'),
            Arm('mmohem OHEM',
                'configs/demo/retinanet_r18-tiny_fpn_ohem_demo.py'),
        ),
        default=False),
)


def runnable_arms(
        experiment: Experiment,
        root: str) -> Tuple[Optional[Experiment], List[Tuple[str, str]]]:
    """``experiment`` without the arms that name unregistered types.

    Args:
        experiment (Experiment): A demo experiment.
        root (str): The repository its configs are relative to.

    Returns:
        tuple[Experiment | None, list[tuple[str, str]]]: The runnable
        experiment (``None`` when its baseline or every other arm is
        skipped) and ``(what, reason)`` of each skip, ``what`` being
        ``'<key> / <arm>'`` for an arm, ``'<key>'`` for the experiment.
    """
    kept, skipped = [], []
    for arm in experiment.arms:
        missing = unregistered_types(
            Config.fromfile(osp.join(root, arm.config)))
        if missing:
            skipped.append(
                (f'{experiment.key} / {arm.name}',
                 ', '.join(f'mmohem.{t}'
                           for t in missing) + ' is not registered yet'))
        else:
            kept.append(arm)
    has_baseline = kept[:1] == [experiment.arms[0]]
    if not has_baseline or len(kept) < 2:
        left = 'only its baseline' if has_baseline else 'no baseline'
        return None, skipped + [(experiment.key, f'{left} left to run')]
    return replace(experiment, arms=tuple(kept)), skipped


def mmohem_types(cfg: Any) -> List[str]:
    """Every ``type='mmohem.X'`` of a config, as ``'X'``, in order."""
    found: Dict[str, None] = {}
    tree = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for path, value in _leaves(tree):
        if path and path[-1] == 'type' and isinstance(
                value, str) and value.startswith('mmohem.'):
            found[value[len('mmohem.'):]] = None
    return list(found)


def unregistered_types(cfg: Any) -> List[str]:
    """The ``mmohem.X`` types of ``cfg`` that no mmohem registry holds."""
    import mmohem  # noqa: F401  (registers every mmohem class)
    from mmohem import registry
    known = set()
    for found in registry.REGISTRIES:
        try:
            known.update(found.module_dict)
        except ImportError:
            continue
    return [t for t in mmohem_types(cfg) if t not in known]


def data_root_options(cfg: Config, root: str) -> Dict[str, str]:
    """``--cfg-options`` moving every path under ``cfg.data_root`` to
    ``root``.

    The configs spell their data paths as ``data_root + ...``; mmengine
    resolves that when it reads the file, so overriding ``data_root`` alone
    would not move them. This rewrites each resolved path instead.

    Args:
        cfg (Config): A config with a ``data_root``.
        root (str): The new data root.

    Returns:
        dict[str, str]: Dotted key -> new value.
    """
    old = cfg.get('data_root')
    if not old:
        raise ValueError(f'{cfg.filename} has no data_root to override.')
    new = root.rstrip('/') + '/'
    old = old.rstrip('/') + '/'
    options = {'data_root': new}
    for path, value in _leaves(cfg.to_dict()):
        if isinstance(value, str) and (value + '/').startswith(old):
            options['.'.join(map(str, path))] = new + value[len(old):]
    return options


def schedule_options(cfg: Config, iters: int) -> Dict[str, Any]:
    """``--cfg-options`` shortening an iteration-based schedule to ``iters``.

    Sets the iterations, evaluates and saves once at the end, and moves
    the schedulers' ``end`` / ``T_max`` that were at the last iteration (or
    beyond ``iters``) to ``iters``.

    Args:
        cfg (Config): A config with an ``IterBasedTrainLoop``.
        iters (int): The new number of iterations.

    Returns:
        dict[str, Any]: Dotted key -> new value.
    """
    old = cfg.train_cfg.get('max_iters')
    if old is None:
        raise ValueError(
            f'{cfg.filename}: --iters needs an iteration-based train_cfg '
            '(max_iters).')
    options: Dict[str, Any] = {
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
    }
    if 'checkpoint' in cfg.get('default_hooks', {}):
        options['default_hooks.checkpoint.interval'] = iters
    for idx, sched in enumerate(cfg.get('param_scheduler') or []):
        for key in ('end', 'T_max'):
            value = sched.get(key)
            if value is not None and (value == old or value > iters):
                options[f'param_scheduler.{idx}.{key}'] = iters
    return options


LeafPath = Tuple[Any, ...]


def _leaves(obj: Any, path: LeafPath = ()) -> Iterator[Tuple[LeafPath, Any]]:
    """``(path, value)`` of every non-container value of nested dicts and
    lists."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, path + (key, ))
    elif isinstance(obj, (list, tuple)):
        for idx, value in enumerate(obj):
            yield from _leaves(value, path + (idx, ))
    else:
        yield path, obj
