"""``python -m mmohem``: list each mmohem component, the registry that finds
it and its ``type=`` string (see :mod:`mmohem.components`)."""
from mmohem.components import list_components

if __name__ == '__main__':
    list_components()
