"""`mim train mmdet|mmseg <path of an mmohem config>` runs a few iterations
on CPU, from the checkout (tests/test_install runs `mim train mmohem <file
name>` from an installed package)."""
import os.path as osp
import subprocess
import sys

import pytest

from mmohem.benchmark.logs import OHEM_PREFIX

MIM = osp.join(osp.dirname(sys.executable), 'mim')


@pytest.mark.parametrize('package, task', [('mmdet', 'det'), ('mmseg', 'seg')])
def test_mim_train_runs_a_few_iterations(package, task, ohem_demo_config,
                                         demo_options, tmp_path):
    config = ohem_demo_config[task]
    work_dir = tmp_path / 'work'
    result = subprocess.run([
        MIM, 'train', package, config, '--gpus', '0', '--work-dir',
        str(work_dir), '--cfg-options', *demo_options(config, 3)
    ],
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Iter(train) [3/3]' in log
    assert OHEM_PREFIX in log  # the OHEM miner ran and logged its statistics
    assert (work_dir / 'iter_3.pth').is_file()
