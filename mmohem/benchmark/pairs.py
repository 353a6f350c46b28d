"""The (baseline, OHEM) config pairs and the overrides a benchmark run needs.

A pair is runnable when every ``mmohem.X`` type its OHEM config names is
registered; a pair whose OHEM part is not written yet is skipped, not
failed.
"""
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Tuple

from mmengine.config import Config


@dataclass(frozen=True)
class Pair:
    """A baseline config and its OHEM twin.

    Attributes:
        key (str): Short name, used on the command line and as folder name.
        model (str): The model as the table shows it.
        baseline (str): Baseline config, relative to the repository.
        ohem (str): OHEM config, relative to the repository.
        default (bool): Whether ``--demo`` runs it without ``--pairs``
            (``make demo``'s budget).
    """

    key: str
    model: str
    baseline: str
    ohem: str
    default: bool = True


DEMO_PAIRS: Tuple[Pair, ...] = (
    Pair('faster_rcnn', 'Faster R-CNN R18-tiny FPN',
         'configs/demo/faster-rcnn_r18-tiny_fpn_demo.py',
         'configs/demo/faster-rcnn_r18-tiny_fpn_ohem_demo.py'),
    Pair('pspnet', 'PSPNet R18-tiny-D8',
         'configs/demo/pspnet_r18-tiny-d8_demo.py',
         'configs/demo/pspnet_r18-tiny-d8_ohem_demo.py'),
    Pair('ssd', 'SSDlite MobileNetV2-tiny',
         'configs/demo/ssdlite_mobilenetv2-tiny_demo.py',
         'configs/demo/ssdlite_mobilenetv2-tiny_ohem_demo.py'),
    Pair(
        'retinanet',
        'RetinaNet R18-tiny FPN (focal loss vs OHEM)',
        'configs/demo/retinanet_r18-tiny_fpn_demo.py',
        'configs/demo/retinanet_r18-tiny_fpn_ohem_demo.py',
        default=False),
)


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
    for name in ('DET_MODELS', 'DET_TASK_UTILS', 'DET_HOOKS', 'SEG_MODELS',
                 'SEG_TASK_UTILS', 'SEG_HOOKS'):
        try:
            known.update(getattr(registry, name).module_dict)
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
