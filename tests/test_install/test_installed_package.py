"""mmohem as pip installs it (not editable): the package data holds every
config, ``_base_`` file, metafile and model-index.yml, the tools and the
demo backbones; every shipped config builds from the installed copy; ``mim
search mmohem`` lists the configs; ``mim train|test|run mmohem`` run the
shipped tools on a shipped demo config named by its file name alone, and
``python -m mmohem`` lists the components.

The package is installed with ``pip install --target`` into a temporary
folder, from a copy of the sources (so that the build writes nothing into
the checkout), and used from another directory with ``PYTHONPATH`` pointing
at that folder: the dependencies come from this interpreter's environment,
mmohem from the installed copy.
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Set, Tuple

import pytest
import yaml
from mmengine.config import Config

from mmohem.benchmark.logs import OHEM_PREFIX
from mmohem.benchmark.pairs import DEMO_EXPERIMENTS, schedule_options
from mmohem.components import registered_components
from mmohem.demo.generate import DEFAULT_ROOT, DatasetSpec, ensure_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# What a build reads from the checkout; configs/, model-index.yml, tools/
# and checkpoints/ reach the package through the mmohem/.mim symlinks.
SOURCES = ('setup.py', 'pyproject.toml', 'MANIFEST.in', 'README.md', 'LICENSE',
           'model-index.yml', 'mmohem', 'configs', 'tools', 'checkpoints')
SHIPPED = ('py', 'yml', 'md')
TOOLS = {
    'train.py', 'test.py', 'tool_config.py', 'dist_train.sh', 'benchmark.py'
}
DEMO_CONFIG = 'faster-rcnn_r18-tiny_fpn_ohem_demo.py'
ITERS = 2
NEEDS_MIM = pytest.mark.skipif(
    importlib.util.find_spec('mim') is None,
    reason='openmim is not installed (pip install openmim)')

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
    """Run this interpreter with ``args`` in ``cwd`` on the CPU (2 threads),
    mmohem from ``installed``."""
    env: Dict[str, str] = dict(
        os.environ,
        PYTHONPATH=installed,
        CUDA_VISIBLE_DEVICES='',
        OMP_NUM_THREADS='2')
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


@NEEDS_MIM
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


def _mim_dir(installed: str) -> str:
    """The installed ``mmohem/.mim`` folder."""
    return osp.join(installed, 'mmohem', '.mim')


def test_package_data_ships_the_tools_and_the_demo_backbones(installed):
    mim = _mim_dir(installed)
    assert set(os.listdir(osp.join(mim, 'tools'))) == TOOLS
    assert os.access(osp.join(mim, 'tools', 'dist_train.sh'), os.X_OK)
    demo = osp.join('checkpoints', 'demo')
    assert sorted(os.listdir(osp.join(mim, demo))) == sorted(
        os.listdir(osp.join(ROOT, demo)))


@pytest.fixture(scope='module')
def demo_data(installed: str) -> None:
    """A tiny demo dataset, written where the installed demo configs read
    it (``.mim/data/mmohem_demo``)."""
    ensure_dataset(
        osp.join(_mim_dir(installed), DEFAULT_ROOT),
        DatasetSpec(num_train=4, num_val=2))


def _demo_options(installed: str, iters: int) -> List[str]:
    """``--cfg-options`` values: ``iters`` iterations (evaluated and saved
    at the end), batch 2, a log line every iteration."""
    cfg = Config.fromfile(
        osp.join(_mim_dir(installed), 'configs', 'demo', DEMO_CONFIG))
    options = dict(
        schedule_options(cfg, iters), **{
            'train_dataloader.batch_size': 2,
            'default_hooks.logger.interval': 1
        })
    return [f'{k}={v}' for k, v in options.items()]


@pytest.fixture(scope='module')
def demo_run(installed: str, demo_data: None,
             tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, str]:
    """``mim train mmohem DEMO_CONFIG`` for ``ITERS`` iterations, run from
    an empty folder.

    Returns:
        tuple[str, str]: The command's stdout and the work dir.
    """
    cwd = tmp_path_factory.mktemp('demo_run')
    command = [
        '-m', 'mim', 'train', 'mmohem', DEMO_CONFIG, '--gpus', '0',
        '--work-dir', 'work', '--cfg-options'
    ]
    result = _run_installed(installed,
                            command + _demo_options(installed, ITERS),
                            str(cwd))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, str(cwd / 'work')


@NEEDS_MIM
def test_mim_train_runs_a_shipped_config_given_by_file_name(
        installed, demo_run):
    stdout, work_dir = demo_run
    mim = _mim_dir(installed)
    config = osp.realpath(osp.join(mim, 'configs', 'demo', DEMO_CONFIG))
    assert f'{osp.join(mim, "tools", "train.py")} {config} ' in stdout
    log = _read_log(work_dir)
    assert f'Iter(train) [{ITERS}/{ITERS}]' in log
    assert OHEM_PREFIX in log  # the OHEM miner ran and logged its statistics
    assert osp.isfile(osp.join(work_dir, f'iter_{ITERS}.pth'))


@NEEDS_MIM
def test_mim_test_evaluates_the_checkpoint_with_the_shipped_tool(
        installed, demo_run, tmp_path):
    checkpoint = osp.join(demo_run[1], f'iter_{ITERS}.pth')
    result = _run_installed(installed, [
        '-m', 'mim', 'test', 'mmohem', DEMO_CONFIG, '--checkpoint', checkpoint,
        '--work-dir', 'test'
    ], str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert osp.join(_mim_dir(installed), 'tools', 'test.py') in result.stdout
    assert 'coco/bbox_mAP: ' in _read_log(str(tmp_path / 'test'))


def test_shipped_dist_train_sh_trains_with_the_shipped_train_py(
        installed, demo_data, tmp_path):
    mim = _mim_dir(installed)
    command = [
        osp.join(mim, 'tools', 'dist_train.sh'),
        osp.join(mim, 'configs', 'demo', DEMO_CONFIG), '1', '--work-dir',
        'dist', '--cfg-options'
    ]
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PYTHONPATH=installed,
        CUDA_VISIBLE_DEVICES='',
        OMP_NUM_THREADS='2',
        PORT='29517')
    result = subprocess.run(
        command + _demo_options(installed, 1),
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Iter(train) [1/1]' in _read_log(str(tmp_path / 'dist'))


@NEEDS_MIM
def test_mim_run_benchmark_trains_the_demo_from_the_installed_package(
        installed, demo_data, tmp_path):
    result = _run_installed(installed, [
        '-m', 'mim', 'run', 'mmohem', 'benchmark', '--demo', '--experiments',
        'faster_rcnn', '--iters', '1', '--num-train', '4', '--num-val', '2',
        '--jobs', '2', '--threads', '1', '--out', 'bench', '--cfg-options',
        'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1'
    ], str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    data = osp.join(_mim_dir(installed), DEFAULT_ROOT)
    assert f'demo data: {data} is current' in result.stdout
    with open(tmp_path / 'bench' / 'benchmark.json') as f:
        report = json.load(f)
    experiment = next(e for e in DEMO_EXPERIMENTS if e.key == 'faster_rcnn')
    assert report['failed'] == []
    assert [r['arm']
            for r in report['runs']] == [a.name for a in experiment.arms]
    assert all(r['iters'] == 1 for r in report['runs'])


def test_python_m_mmohem_lists_the_installed_components(installed, tmp_path):
    result = _run_installed(installed, ['-m', 'mmohem'], str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    configs = osp.join(_mim_dir(installed), 'configs')
    assert result.stdout.splitlines()[0].endswith(f'configs in {configs}')
    listed = set(re.findall(r"type='(mmohem\.\w+)'", result.stdout))
    assert listed == {c.type for c in registered_components()}


def _read_log(work_dir: str) -> str:
    """The text of the one run log in ``work_dir``."""
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return f.read()
