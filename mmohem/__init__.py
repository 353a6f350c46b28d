"""mmohem: Online Hard Example Mining for mmdet 3.x and mmsegmentation 1.x.

Importing the package registers its classes under the ``mmohem`` scope of
whichever of mmdet / mmsegmentation is installed;
:func:`list_components` (``python -m mmohem``) prints what is registered
where.
"""
from . import evaluation, hooks, optim, vis  # noqa: F401
from .components import list_components
from .registry import has_package
from .version import __version__

if has_package('mmdet'):
    from . import det  # noqa: F401
if has_package('mmseg'):
    from . import seg  # noqa: F401

__all__ = ['__version__', 'list_components']
