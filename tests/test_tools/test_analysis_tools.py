"""The timing scripts of tools/analysis_tools/ start from any directory
(their imports resolve), the RoI profile runs at a tiny size, and the
segmentation benchmark finds the repository's PSPNet config."""
import glob
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')
SCRIPTS = sorted(glob.glob(osp.join(TOOLS, '*.py')))
ENTRY_POINTS = [s for s in SCRIPTS if not s.endswith('bench_common.py')]


def test_every_timing_script_is_found():
    names = {osp.basename(s) for s in ENTRY_POINTS}
    assert {
        'bench_roi_sampler.py', 'bench_seg.py', 'bench_ssd.py',
        'bench_retina.py', 'profile_roi_forward.py', 'count_launches.py'
    } <= names


@pytest.mark.parametrize('script', ENTRY_POINTS, ids=osp.basename)
def test_help_from_another_directory(script, tmp_path, run_script):
    result = run_script(script, '--help', cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'usage:' in result.stdout


def test_roi_profile_runs(tmp_path, run_script):
    args = '--rois 16 --size 256 --repeats 1'.split()
    result = run_script(
        osp.join(TOOLS, 'profile_roi_forward.py'), *args, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [
        line for line in result.stdout.splitlines()
        if '| mmcv |' in line or '| torchvision |' in line
    ]
    assert len(rows) == 2


def test_seg_benchmark_times_a_pspnet_step(tmp_path, run_script):
    out = tmp_path / 'seg.json'
    args = f'--cases pspnet/ce --warmup 0 --repeats 1 --out {out}'.split()
    result = run_script(
        osp.join(TOOLS, 'bench_seg.py'), *args, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    [row] = json.loads(out.read_text())['results']
    assert row['case'] == 'pspnet/ce' and row['median_ms'] > 0


def test_configs_are_read_from_the_repository_anywhere(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        'bench_common', osp.join(TOOLS, 'bench_common.py'))
    bench_common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_common)
    monkeypatch.chdir(tmp_path)
    cfg = bench_common.repo_config('configs/ssd/ssd300_mmohem-ohem_coco.py')
    assert cfg.model.train_cfg.sampler.type == 'mmohem.OHEMSampler'
