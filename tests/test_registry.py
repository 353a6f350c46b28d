import os.path as osp
import re
import subprocess
import sys
import textwrap

import mmdet.models.losses as mmdet_losses
import mmseg.models.losses as mmseg_losses
import pytest
from mmdet.models.task_modules.samplers import OHEMSampler as MMDetOHEMSampler
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import OPTIM_WRAPPERS as MMDET_OPTIM_WRAPPERS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmengine.registry import HOOKS as ENGINE_HOOKS
from mmengine.registry import OPTIM_WRAPPERS as ENGINE_OPTIM_WRAPPERS
from mmengine.registry import DefaultScope
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS
from mmseg.structures.sampler import OHEMPixelSampler

import mmohem  # noqa: F401  (registers every mmohem class)
from mmohem.det import OHEMSampler
from mmohem.registry import (DET_MODELS, DET_TASK_UTILS, HOOKS, OPTIM_WRAPPERS,
                             REGISTRIES, SEG_MODELS, SEG_TASK_UTILS)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout."""
    proc = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_children_have_mmohem_scope_under_upstream_parents():
    assert DET_TASK_UTILS.scope == SEG_TASK_UTILS.scope == 'mmohem'
    assert DET_TASK_UTILS.parent is MMDET_TASK_UTILS
    assert SEG_TASK_UTILS.parent is MMSEG_TASK_UTILS
    assert MMDET_TASK_UTILS._children['mmohem'] is DET_TASK_UTILS
    assert MMSEG_TASK_UTILS._children['mmohem'] is SEG_TASK_UTILS


def test_upstream_classes_stay_upstream():
    assert MMDET_TASK_UTILS.get('OHEMSampler') is MMDetOHEMSampler
    assert MMSEG_TASK_UTILS.get('OHEMPixelSampler') is OHEMPixelSampler
    assert MMDET_TASK_UTILS.get('mmohem.OHEMSampler') is OHEMSampler


@pytest.mark.parametrize('scope', [None, 'mmdet'])
def test_nested_builds_resolve_upstream_names(scope):
    with DefaultScope.overwrite_default_scope(scope):
        det_loss = DET_MODELS.build(dict(type='CrossEntropyLoss'))
    assert type(det_loss) is mmdet_losses.CrossEntropyLoss
    with DefaultScope.overwrite_default_scope(scope and 'mmseg'):
        seg_loss = SEG_MODELS.build(dict(type='CrossEntropyLoss'))
    assert type(seg_loss) is mmseg_losses.CrossEntropyLoss


@pytest.mark.parametrize('custom_imports', [True, False])
def test_scoped_type_resolves_from_an_mmdet_config(custom_imports):
    out = _run(f'''
        import sys
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config(dict(default_scope='mmdet'))
        if {custom_imports}:
            cfg.merge_from_dict(dict(custom_imports=dict(
                imports=['mmohem'], allow_failed_imports=False)))
            from mmengine.utils import import_modules_from_strings
            import_modules_from_strings(**cfg.custom_imports)
        assert ('mmohem' in sys.modules) == {custom_imports}
        init_default_scope(cfg.default_scope)
        from mmdet.registry import TASK_UTILS
        cls = TASK_UTILS.get('mmohem.OHEMSampler')
        print(cls.__module__, TASK_UTILS.get('OHEMSampler').__module__)
        ''')
    ours, upstream = out.split()
    assert ours == 'mmohem.det.ohem_sampler'
    assert upstream.startswith('mmdet.')


def test_import_without_mmsegmentation_names_the_package():
    out = _run('''
        import sys
        from importlib.abc import MetaPathFinder

        class Block(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == 'mmseg':
                    raise ModuleNotFoundError(name)

        sys.meta_path.insert(0, Block())
        import mmohem
        from mmohem.det import OHEMSampler
        from mmohem.registry import SEG_MODELS
        for use in (lambda: SEG_MODELS.register_module,
                    lambda: __import__('mmohem.seg')):
            try:
                use()
            except ImportError as e:
                print(e)
        ''')
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert all('mmseg' in line and 'pip install' in line for line in lines)


def test_hooks_and_optim_wrappers_are_registered_once_under_mmengine():
    assert ENGINE_HOOKS._children['mmohem'] is HOOKS
    assert ENGINE_OPTIM_WRAPPERS._children['mmohem'] is OPTIM_WRAPPERS
    for upstream in (MMDET_HOOKS, MMSEG_HOOKS, MMDET_OPTIM_WRAPPERS,
                     MMSEG_OPTIM_WRAPPERS):
        assert 'mmohem' not in upstream._children
    for name, home in (('OHEMVisHook', HOOKS), ('CandidateLossHook', HOOKS),
                       ('CPUAmpOptimWrapper', OPTIM_WRAPPERS)):
        assert [r for r in REGISTRIES if name in r.module_dict] == [home]


def test_readme_component_table_lists_what_is_registered():
    with open(osp.join(ROOT, 'README.md')) as f:
        text = f.read()
    section = text[text.index('## What it gives you'):]
    section = section[:section.index('\n## ', 1)]
    first_cells = [
        line.split('|')[1] for line in section.splitlines()
        if line.startswith('| `mmohem.')
    ]
    listed = set(re.findall(r'`mmohem\.(\w+)`', ' '.join(first_cells)))
    registered = set().union(*(r.module_dict for r in REGISTRIES))
    assert listed == registered
