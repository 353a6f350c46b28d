"""tools/train.py, tools/test.py and tools/dist_train.sh on CPU: resume,
testing a checkpoint, 2-process gloo training, --amp on a CPU,
determinism. The tools run with ``CUDA_VISIBLE_DEVICES=''``, so these are CPU
runs on a machine with a GPU too."""
import json
import math
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmohem.benchmark.logs import OHEM_PREFIX

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ['det', 'seg']


def _run(command, **env):
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='', **env)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env)


def _train(config, work_dir, options, *extra):
    return _run([
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
        str(work_dir), *extra, '--cfg-options', *options
    ])


def _train_iters(log):
    """Training iterations a text log reports, in order."""
    return [int(m) for m in re.findall(r'Iter\(train\) \[\s*(\d+)/', log)]


def _logs(work_dir):
    return [p.read_text() for p in sorted(work_dir.glob('*/*.log'))]


@pytest.mark.parametrize('task', TASKS)
def test_resume_continues_to_the_same_iteration_count(task, ohem_demo_config,
                                                      demo_options, tmp_path):
    config = ohem_demo_config[task]
    options = demo_options(config, 4) + ['default_hooks.checkpoint.interval=2']
    first = _train(config, tmp_path, options + ['train_cfg.max_iters=2'])
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / 'iter_2.pth').is_file()
    second = _train(config, tmp_path, options, '--resume')
    assert second.returncode == 0, second.stderr[-3000:]
    first_log, second_log = _logs(tmp_path)
    assert _train_iters(first_log) == [1, 2]
    assert 'resumed' in second_log.lower()
    assert _train_iters(second_log) == [3, 4]
    assert OHEM_PREFIX in second_log
    checkpoint = tmp_path / 'iter_4.pth'
    assert checkpoint.is_file()
    test_dir = tmp_path / 'test'
    tested = _run([
        sys.executable,
        osp.join(ROOT, 'tools', 'test.py'), config,
        str(checkpoint), '--work-dir',
        str(test_dir), '--cfg-options', *options
    ])
    assert tested.returncode == 0, tested.stderr[-3000:]
    (metrics, ) = test_dir.glob('*/*.json')
    assert ('coco/bbox_mAP' if task == 'det' else 'mIoU') in json.loads(
        metrics.read_text())


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


@pytest.mark.parametrize('task', TASKS)
def test_two_process_gloo_training(task, ohem_demo_config, demo_options,
                                   tmp_path):
    config = ohem_demo_config[task]
    result = _run([
        'bash',
        osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2', '--work-dir',
        str(tmp_path), '--cfg-options', *demo_options(config, 3)
    ],
                  PYTHON=sys.executable,
                  PORT=_free_port())
    assert result.returncode == 0, result.stderr[-3000:]
    (log, ) = _logs(tmp_path)  # rank 0 writes the log
    assert 'Distributed training: True' in log
    assert re.search(r'GPU number: 2\b', log)  # mmengine's name for ranks
    assert _train_iters(log)[-1] == 3
    assert OHEM_PREFIX in log
    # Both ranks mined and finished (exit 0 above); the log is rank 0's.
    assert (tmp_path / 'iter_3.pth').is_file()


@pytest.mark.parametrize('task', ['seg', 'ssd'])
def test_amp_on_cpu_trains_with_bfloat16_autocast(task, ohem_demo_config,
                                                  demo_options, tmp_path):
    config = ohem_demo_config[task]
    result = _train(config, tmp_path, demo_options(config, 3), '--amp')
    assert result.returncode == 0, result.stderr[-3000:]
    (log, ) = _logs(tmp_path)
    assert "type='mmohem.CPUAmpOptimWrapper'" in log
    assert _train_iters(log)[-1] == 3
    records = _ohem_records(tmp_path)
    assert len(records) == 3 and all(records)
    losses = [r['loss'] for r in _train_records(tmp_path)]
    assert all(math.isfinite(v) for v in losses)


def test_amp_on_cpu_refuses_a_model_with_an_rpn(ohem_demo_config, tmp_path):
    result = _train(ohem_demo_config['det'], tmp_path, ['randomness.seed=0'],
                    '--amp')
    assert result.returncode != 0
    assert "mmcv's CPU nms kernel, which takes float32 only" in result.stderr


def _train_records(work_dir):
    """The scalars of every logged training iteration."""
    (scalars, ) = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [r for r in records if 'lr' in r]


def _ohem_records(work_dir):
    """The ``ohem_...`` scalars of every logged training iteration."""
    return [{
        k: v
        for k, v in r.items() if k.startswith(OHEM_PREFIX)
    } for r in _train_records(work_dir)]


@pytest.mark.parametrize('task', TASKS)
def test_fixed_seed_deterministic_runs_mine_the_same(task, ohem_demo_config,
                                                     demo_options, tmp_path):
    config = ohem_demo_config[task]
    options = demo_options(
        config, 3) + ['randomness.seed=7', 'randomness.deterministic=True']
    runs = []
    for name in ('a', 'b'):
        result = _train(config, tmp_path / name, options)
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(_ohem_records(tmp_path / name))
    assert len(runs[0]) == 3 and all(runs[0])
    assert runs[0] == runs[1]


@pytest.mark.parametrize('deterministic, preset, expected', [
    (True, None, ':4096:8'),
    (True, ':16:8', ':16:8'),
    (False, None, None),
])
def test_deterministic_runs_configure_cublas(deterministic, preset, expected,
                                             monkeypatch, load_tool):
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    if preset is not None:
        monkeypatch.setenv('CUBLAS_WORKSPACE_CONFIG', preset)
    cfg = Config(dict(randomness=dict(seed=0, deterministic=deterministic)))
    load_tool('train').deterministic_env(cfg)
    assert os.environ.get('CUBLAS_WORKSPACE_CONFIG') == expected
