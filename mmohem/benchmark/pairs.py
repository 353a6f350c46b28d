"""The demo experiments (a baseline config and its peers, the *arms*) and
the overrides a benchmark run needs."""
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Tuple

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
        'faster_rcnn_peers',
        'Faster R-CNN R18-tiny FPN, other strategies', (
            Arm('baseline', 'configs/demo/faster-rcnn_r18-tiny_fpn_demo.py'),
            Arm('PISA', 'configs/demo/faster-rcnn_r18-tiny_fpn_pisa_demo.py'),
            Arm('Libra sampler',
                'configs/demo/faster-rcnn_r18-tiny_fpn_libra-sampler_demo.py'),
        ),
        default=False),
    Experiment(
        'pspnet_peers',
        'PSPNet R18-tiny-D8, other strategies', (
            Arm('baseline', 'configs/demo/pspnet_r18-tiny-d8_demo.py'),
            Arm('mmseg OhemCrossEntropy loss',
                'configs/demo/pspnet_r18-tiny-d8_mmseg-ohem-loss_demo.py'),
        ),
        default=False),
    Experiment(
        'retinanet',
        'RetinaNet R18-tiny FPN', (
            Arm('focal loss', 'configs/demo/retinanet_r18-tiny_fpn_demo.py'),
            Arm('GHM-C', 'configs/demo/retinanet_r18-tiny_fpn_ghm-c_demo.py'),
            Arm('mmohem OHEM',
                'configs/demo/retinanet_r18-tiny_fpn_ohem_demo.py'),
        ),
        default=False),
)


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
