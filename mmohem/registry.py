"""Registries of mmohem, all of scope ``mmohem``.

Models, task utilities and metrics belong to one task: they live in
children of mmdet's and mmseg's registries. ``type='mmohem.OHEMSampler'``
in an mmdet config is looked up in mmdet's ``TASK_UTILS``, which finds its
``mmohem`` child here (mmengine imports this module by itself when it meets
the scope, so ``custom_imports`` is optional). Classes built from these
children still resolve plain names (``'Linear'``, ``'CrossEntropyLoss'``)
through the parent, and registering here never shadows an upstream class of
the same name.

Hooks and optimizer wrappers serve either task: each is registered once, in
``HOOKS`` and ``OPTIM_WRAPPERS``, children of mmengine's root registries
(as mmyolo registers its own). mmdet's and mmseg's registries have no
``mmohem`` child for them, so mmengine looks ``mmohem.X`` up from the root,
from an mmdet and an mmseg config alike.

Either upstream package may be missing: the registries of the missing one
raise an ``ImportError`` naming the package to install when used.
"""
import importlib.util
from typing import Any, List

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
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
SEG_MODELS = _child('mmseg', 'MODELS', ['mmohem.seg'])
SEG_TASK_UTILS = _child('mmseg', 'TASK_UTILS', ['mmohem.seg'])
DET_METRICS = _child('mmdet', 'METRICS', ['mmohem.evaluation'])
SEG_METRICS = _child('mmseg', 'METRICS', ['mmohem.evaluation'])

HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmohem',
    locations=['mmohem.hooks', 'mmohem.vis'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    scope='mmohem',
    locations=['mmohem.optim'])

#: Every mmohem registry (a missing package's raise ``ImportError`` on use).
REGISTRIES = (DET_MODELS, DET_TASK_UTILS, DET_METRICS, SEG_MODELS,
              SEG_TASK_UTILS, SEG_METRICS, HOOKS, OPTIM_WRAPPERS)
