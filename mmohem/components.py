"""What mmohem registers and where, read from its registries (``REGISTRIES``
of :mod:`mmohem.registry`): each class, the upstream registry a config's
``type=`` string reaches it through, and that string.

``python -m mmohem`` prints the listing (:func:`list_components`).
"""
import importlib
import os.path as osp
import re
import sys
import textwrap
from typing import List, NamedTuple, Optional, TextIO, Tuple

from mmengine.registry import Registry

from .registry import REGISTRIES
from .version import __version__

CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), '.mim', 'configs')


class Component(NamedTuple):
    """One registered class.

    Attributes:
        type (str): What a config's ``type=`` takes, e.g.
            ``'mmohem.OHEMSampler'``.
        registry (str): The upstream registry that finds it, as imported,
            e.g. ``'mmdet.registry.TASK_UTILS'``.
        cls (type): The class.
    """

    type: str
    registry: str
    cls: type


def registered_components() -> List[Component]:
    """Every class mmohem registers, by registry then name; those of a
    missing upstream package (mmdet or mmseg) are left out.

    Returns:
        list[Component]: The components.
    """
    return [
        Component(f'{registry.scope}.{name}', _upstream_name(registry.parent),
                  cls) for registry in _split_registries()[0]
        for name, cls in sorted(registry.module_dict.items())
    ]


def list_components(file: Optional[TextIO] = None) -> None:
    """Print every mmohem component under the registry that finds it: its
    ``type=`` string, class and summary; then why any registry is
    unusable (its upstream package missing).

    Args:
        file (TextIO, optional): Where to print; defaults to stdout.
    """
    lines = [f'mmohem {__version__}; configs in {CONFIGS}']
    registry = None
    for component in registered_components():
        if component.registry != registry:
            registry = component.registry
            lines += ['', f'{registry}:']
        lines += _describe(component)
    lines += [f'unusable: {error}' for error in _split_registries()[1]]
    print('\n'.join(lines), file=file or sys.stdout)


def _upstream_name(registry: Registry) -> str:
    """Import path of an upstream registry, e.g. ``'mmdet.registry.MODELS'``.

    Args:
        registry (Registry): A registry of mmdet, mmseg or mmengine.

    Returns:
        str: ``<scope>.registry.<NAME>``.
    """
    module = importlib.import_module(f'{registry.scope}.registry')
    return next(f'{module.__name__}.{name}'
                for name, value in vars(module).items() if value is registry)


def _split_registries() -> Tuple[List[Registry], List[str]]:
    """The usable registries, with every class imported, and the error of
    each unusable one."""
    usable, errors = [], []
    for registry in REGISTRIES:
        try:
            registry.import_from_location()
        except ImportError as error:
            errors.append(str(error))
        else:
            usable.append(registry)
    return usable, errors


def _describe(component: Component) -> List[str]:
    """Lines of one component: ``type=``, class, docstring's first
    paragraph."""
    cls = component.cls
    summary = re.split(r'\n\s*\n', (cls.__doc__ or '').strip())[0]
    return [f"  type='{component.type}'  ({cls.__module__}.{cls.__name__})"
            ] + textwrap.wrap(
                ' '.join(summary.split()),
                width=79,
                initial_indent=' ' * 6,
                subsequent_indent=' ' * 6)
