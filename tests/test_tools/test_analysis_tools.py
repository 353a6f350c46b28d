"""The timing scripts of tools/analysis_tools/ start from any directory
(their imports resolve), and the RoI profile runs at a tiny size."""
import glob
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPTS = sorted(glob.glob(osp.join(ROOT, 'tools', 'analysis_tools', '*.py')))
ENTRY_POINTS = [s for s in SCRIPTS if not s.endswith('bench_common.py')]


def test_every_timing_script_is_found():
    names = {osp.basename(s) for s in ENTRY_POINTS}
    assert {
        'bench_roi_sampler.py', 'bench_seg.py', 'bench_ssd.py',
        'bench_retina.py', 'profile_roi_forward.py'
    } <= names


@pytest.mark.parametrize('script', ENTRY_POINTS, ids=osp.basename)
def test_help_from_another_directory(script, tmp_path, run_script):
    result = run_script(script, '--help', cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'usage:' in result.stdout


def test_roi_profile_runs(tmp_path, run_script):
    result = run_script(
        osp.join(ROOT, 'tools', 'analysis_tools', 'profile_roi_forward.py'),
        '--rois',
        '16',
        '--size',
        '256',
        '--repeats',
        '1',
        cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [
        line for line in result.stdout.splitlines()
        if '| mmcv |' in line or '| torchvision |' in line
    ]
    assert len(rows) == 2
