"""Registries of mmohem: children, scope ``mmohem``, of mmdet's and mmseg's.

``type='mmohem.OHEMSampler'`` in an mmdet config is looked up in mmdet's
``TASK_UTILS``, which finds its ``mmohem`` child here (mmengine imports this
module by itself when it meets the scope, so ``custom_imports`` is optional).
Classes built from these children still resolve plain names (``'Linear'``,
``'CrossEntropyLoss'``) through the parent, and registering here never
shadows an upstream class of the same name.

Either upstream package may be missing: the registries of the missing one
raise an ``ImportError`` naming the package to install when used.
"""
import importlib.util
from typing import Any, List, Type

from mmengine.registry import Registry

_INSTALL_HINT = {
    'mmdet': "pip install 'mmdet>=3.0.0,<3.4.0' (or: mim install mmdet)",
    'mmseg': "pip install 'mmsegmentation>=1.0.0,<1.3.0'",
}


class MissingRegistry:
    """Stand-in for the registries of an upstream package that is missing.

    Args:
        package (str): Import name of the missing package.
        name (str): Name of the registry it stands for.
    """

    def __init__(self, package: str, name: str) -> None:
        self._package = package
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise ImportError(
            f'mmohem: {self._name} of the {self._package} part is unusable '
            f'because {self._package} is not installed; '
            f'{_INSTALL_HINT[self._package]}.')


def has_package(package: str) -> bool:
    """Whether ``package`` can be imported."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _child(package: str, name: str, locations: List[str]) -> Any:
    if not has_package(package):
        return MissingRegistry(package, f'{package}.{name}')
    parent = getattr(importlib.import_module(f'{package}.registry'), name)
    return Registry(
        f'mmohem {parent.name}',
        parent=parent,
        scope='mmohem',
        locations=locations)


DET_MODELS = _child('mmdet', 'MODELS', ['mmohem.det'])
DET_TASK_UTILS = _child('mmdet', 'TASK_UTILS', ['mmohem.det'])
DET_HOOKS = _child('mmdet', 'HOOKS',
                   ['mmohem.det', 'mmohem.hooks', 'mmohem.vis'])
SEG_MODELS = _child('mmseg', 'MODELS', ['mmohem.seg'])
SEG_TASK_UTILS = _child('mmseg', 'TASK_UTILS', ['mmohem.seg'])
SEG_HOOKS = _child('mmseg', 'HOOKS',
                   ['mmohem.seg', 'mmohem.hooks', 'mmohem.vis'])

DET_METRICS = _child('mmdet', 'METRICS', ['mmohem.evaluation'])
SEG_METRICS = _child('mmseg', 'METRICS', ['mmohem.evaluation'])
DET_OPTIM_WRAPPERS = _child('mmdet', 'OPTIM_WRAPPERS', ['mmohem.optim'])
SEG_OPTIM_WRAPPERS = _child('mmseg', 'OPTIM_WRAPPERS', ['mmohem.optim'])

#: Every mmohem registry (a missing package's raise ``ImportError`` on use).
REGISTRIES = (DET_MODELS, DET_TASK_UTILS, DET_HOOKS, DET_METRICS,
              DET_OPTIM_WRAPPERS, SEG_MODELS, SEG_TASK_UTILS, SEG_HOOKS,
              SEG_METRICS, SEG_OPTIM_WRAPPERS)


def _register_in_both(cls: Type, det_registry: Any, seg_registry: Any) -> Type:
    """Register ``cls`` in the registries of the installed packages, so
    that ``type='mmohem.X'`` finds it from an mmdet and an mmseg config."""
    for package, registry in (('mmdet', det_registry), ('mmseg',
                                                        seg_registry)):
        if has_package(package):
            registry.register_module(module=cls)
    return cls


def register_hook(cls: Type) -> Type:
    """Class decorator: register a hook in ``DET_HOOKS`` and ``SEG_HOOKS``."""
    return _register_in_both(cls, DET_HOOKS, SEG_HOOKS)


def register_optim_wrapper(cls: Type) -> Type:
    """Class decorator: register an optimizer wrapper in
    ``DET_OPTIM_WRAPPERS`` and ``SEG_OPTIM_WRAPPERS``."""
    return _register_in_both(cls, DET_OPTIM_WRAPPERS, SEG_OPTIM_WRAPPERS)
