"""mmohem as pip installs it (not editable): the package data holds every
config, ``_base_`` file, metafile and model-index.yml; every shipped config
builds from the installed copy; ``mim search mmohem`` lists the configs.

The package is installed with ``pip install --target`` into a temporary
folder, from a copy of the sources (so that the build writes nothing into
the checkout), and used from another directory with ``PYTHONPATH`` pointing
at that folder: the dependencies come from this interpreter's environment,
mmohem from the installed copy.
"""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Dict, List, Set

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# What a build reads from the checkout; configs/ and model-index.yml reach
# the package through the mmohem/.mim symlinks.
SOURCES = ('setup.py', 'pyproject.toml', 'MANIFEST.in', 'README.md', 'LICENSE',
           'model-index.yml', 'mmohem', 'configs')
SHIPPED = ('py', 'yml', 'md')

# Builds the model of every config found in the installed package, through
# the registry of the config's default scope, without init_weights (no
# pretrained or demo checkpoint is loaded).
BUILD_ALL = """
import glob, importlib, os.path as osp
from mmengine.config import Config
from mmengine.registry import init_default_scope
import mmohem
print('mmohem', osp.realpath(mmohem.__file__))
configs = osp.join(osp.dirname(mmohem.__file__), '.mim', 'configs')
for path in sorted(glob.glob(osp.join(configs, '*', '*.py'))):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    registry = importlib.import_module(cfg.default_scope + '.registry')
    model = registry.MODELS.build(cfg.model)
    print('built', osp.relpath(path, configs), type(model).__name__)
"""


def _files(folder: str) -> Set[str]:
    """Paths, relative to ``folder``, of its files the package ships."""
    return {
        osp.relpath(path, folder)
        for ext in SHIPPED
        for path in glob.glob(
            osp.join(folder, '**', f'*.{ext}'), recursive=True)
    }


def _configs(folder: str) -> Set[str]:
    """Config files of ``folder`` (not ``_base_`` ones), as ``algo/x.py``."""
    return {
        osp.relpath(path, folder)
        for path in glob.glob(osp.join(folder, '*', '*.py'))
    }


@pytest.fixture(scope='module')
def installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder the package is installed into (non-editable)."""
    tmp = tmp_path_factory.mktemp('install')
    src, target = tmp / 'src', tmp / 'target'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.egg-info', 'build')
    for name in SOURCES:
        origin = osp.join(ROOT, name)
        if osp.isdir(origin):
            shutil.copytree(origin, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(origin, src / name)
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps',
        '--no-build-isolation', '--no-index', '--no-compile', '--quiet',
        '--target',
        str(target),
        str(src)
    ],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(target)


def _run_installed(installed: str, args: List[str],
                   cwd: str) -> subprocess.CompletedProcess:
    """Run this interpreter with ``args`` in ``cwd``, mmohem from
    ``installed``."""
    env: Dict[str, str] = dict(os.environ, PYTHONPATH=installed)
    return subprocess.run([sys.executable, *args],
                          capture_output=True,
                          text=True,
                          cwd=cwd,
                          env=env,
                          timeout=600)


def test_package_data_ships_configs_metafiles_and_model_index(installed):
    mim = osp.join(installed, 'mmohem', '.mim')
    configs = osp.join(mim, 'configs')
    assert not osp.islink(configs)
    assert _files(configs) == _files(osp.join(ROOT, 'configs'))
    assert any('_base_' in path for path in _files(configs))
    with open(osp.join(mim, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    assert imports and all(osp.isfile(osp.join(mim, p)) for p in imports)
    for metafile in imports:
        with open(osp.join(mim, metafile)) as f:
            models = yaml.safe_load(f)['Models']
        assert all(osp.isfile(osp.join(mim, m['Config'])) for m in models)


def test_every_shipped_config_builds_from_the_installed_package(
        installed, tmp_path):
    result = _run_installed(installed, ['-c', BUILD_ALL], str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    module = lines[0].split(' ', 1)[1]
    assert module.startswith(osp.realpath(installed) + os.sep)
    built = {line.split()[1] for line in lines if line.startswith('built ')}
    assert built == _configs(osp.join(ROOT, 'configs'))


@pytest.mark.skipif(
    importlib.util.find_spec('mim') is None,
    reason='openmim is not installed (pip install openmim)')
def test_mim_search_lists_the_configs(installed, tmp_path):
    result = _run_installed(installed, ['-m', 'mim', 'search', 'mmohem'],
                            str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        imports = yaml.safe_load(f)['Import']
    names = []
    for metafile in imports:
        with open(osp.join(ROOT, metafile)) as f:
            names += [m['Name'] for m in yaml.safe_load(f)['Models']]
    listed = {
        line.split(': ', 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith('config id: ')
    }
    assert listed == set(names)
    assert listed == {
        osp.splitext(osp.basename(path))[0]
        for path in _configs(osp.join(ROOT, 'configs'))
        if not path.startswith('demo' + os.sep)
    }
