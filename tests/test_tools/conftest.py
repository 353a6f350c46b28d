"""Fixtures for the command-line tools: a tiny demo dataset, the
``--cfg-options`` that point a demo config at it with a short schedule, and
two such runs of one OHEM arm launched as ``make demo`` launches its runs."""
import importlib.util
import io
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import Callable, Dict, List, Tuple

import pytest
from mmengine.config import Config

from mmohem.benchmark.pairs import data_root_options, schedule_options
from mmohem.benchmark.runs import Job, Reporter, run_jobs, thread_env
from mmohem.demo.generate import DatasetSpec, ensure_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='session')
def ohem_demo_config() -> Dict[str, str]:
    """Paths of the OHEM demo configs: ``'det'`` (Faster R-CNN), ``'seg'``
    (PSPNet), ``'ssd'`` (SSDlite)."""
    return {
        'det':
        osp.join(ROOT, 'configs/demo/faster-rcnn_r18-tiny_fpn_ohem_demo.py'),
        'seg':
        osp.join(ROOT, 'configs/demo/pspnet_r18-tiny-d8_ohem_demo.py'),
        'ssd':
        osp.join(ROOT, 'configs/demo/ssdlite_mobilenetv2-tiny_ohem_demo.py'),
    }


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> str:
    """A demo dataset of 4 train and 2 val scenes."""
    root = str(tmp_path_factory.mktemp('demo_data'))
    ensure_dataset(root, DatasetSpec(num_train=4, num_val=2))
    return root


@pytest.fixture(scope='session')
def demo_options(demo_data) -> Callable[[str, int], List[str]]:
    """Factory: (config, iters) -> ``KEY=VALUE`` strings for the tools:
    the tiny dataset, ``iters`` iterations (evaluated and saved at the end),
    batch 2 and a log line every iteration."""

    def options(config: str, iters: int) -> List[str]:
        cfg = Config.fromfile(config)
        values = dict(
            data_root_options(cfg, demo_data), **schedule_options(cfg, iters))
        values.update({
            'train_dataloader.batch_size': 2,
            'default_hooks.logger.interval': 1
        })
        return [f'{k}={v}' for k, v in values.items()]

    return options


@pytest.fixture(scope='session')
def load_tool() -> Callable[[str], ModuleType]:
    """Factory: name of a script in tools/ -> the script as a module
    (tools/ is not a package: it goes on ``sys.path``, as for a script run
    from there, so that the script's sibling imports resolve)."""
    if osp.join(ROOT, 'tools') not in sys.path:
        sys.path.insert(0, osp.join(ROOT, 'tools'))

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(
            f'mmohem_tools_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope='session')
def run_script() -> Callable[..., subprocess.CompletedProcess]:
    """Factory: (script path, *args, cwd=ROOT) -> the finished process of
    the script run by this python on the CPU (``CUDA_VISIBLE_DEVICES=''``,
    2 threads), its output captured as text."""

    def run(script: str,
            *args: str,
            cwd: str = ROOT) -> subprocess.CompletedProcess:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='2')
        return subprocess.run([sys.executable, script, *args],
                              cwd=cwd,
                              env=env,
                              capture_output=True,
                              text=True,
                              timeout=900)

    return run


#: Training iterations of each :func:`twin_runs` run.
TWIN_ITERS = 4


@pytest.fixture(scope='session')
def twin_runs(ohem_demo_config, demo_options,
              tmp_path_factory) -> Tuple[str, str]:
    """Work dirs of two runs of the Faster R-CNN mmohem OHEM demo arm, same
    seed, :data:`TWIN_ITERS` iterations (a log line and a candidate loss
    each), launched as ``make demo`` launches its runs: ``tools/train.py``
    subprocesses through :func:`~mmohem.benchmark.runs.run_jobs`, both at
    once, one torch thread each."""
    config = ohem_demo_config['det']
    options = demo_options(config, TWIN_ITERS) + [
        'randomness.seed=0', 'custom_hooks.0.interval=1'
    ]
    root = tmp_path_factory.mktemp('twin_runs')
    dirs = (str(root / 'a'), str(root / 'b'))
    jobs = [
        Job(d, [
            sys.executable,
            osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', d,
            '--cfg-options', *options
        ], d, dict(thread_env(1), CUDA_VISIBLE_DEVICES='')) for d in dirs
    ]
    outcomes = run_jobs(jobs, 2, Reporter(io.StringIO()), lambda _: None)
    for outcome in outcomes:
        assert outcome.returncode == 0, open(outcome.stdout_log).read()[-3000:]
    return dirs
