import importlib
import io
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
from mmohem import list_components
from mmohem.components import registered_components
from mmohem.det import OHEMSampler
from mmohem.registry import (DET_MODELS, DET_TASK_UTILS, HOOKS, OPTIM_WRAPPERS,
                             REGISTRIES, SEG_MODELS, SEG_TASK_UTILS)
from mmohem.seg.ohem_cross_entropy import OhemCrossEntropySampler
from mmohem.utils import signature_options

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


# Code run first in a child interpreter where mmseg cannot be imported.
WITHOUT_MMSEG = '''
        import sys
        from importlib.abc import MetaPathFinder

        class Block(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == 'mmseg':
                    raise ModuleNotFoundError(name)

        sys.meta_path.insert(0, Block())
'''


def test_import_without_mmsegmentation_names_the_package():
    out = _run(WITHOUT_MMSEG + '''
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


def test_registered_components_are_what_the_registries_hold():
    listed = {(c.type, c.cls) for c in registered_components()}
    held = {(f'mmohem.{name}', cls)
            for registry in REGISTRIES
            for name, cls in registry.module_dict.items()}
    assert listed == held
    homes = {c.type: c.registry for c in registered_components()}
    assert homes['mmohem.OHEMSampler'] == 'mmdet.registry.TASK_UTILS'
    assert homes['mmohem.OHEMVisHook'] == 'mmengine.registry.HOOKS'
    assert homes['mmohem.CPUAmpOptimWrapper'] == \
        'mmengine.registry.OPTIM_WRAPPERS'


def test_each_listed_type_resolves_through_its_listed_registry():
    for component in registered_components():
        module, name = component.registry.rsplit('.', 1)
        upstream = getattr(importlib.import_module(module), name)
        assert upstream.get(component.type) is component.cls, component


def test_list_components_prints_each_type_under_its_registry():
    out = io.StringIO()
    list_components(out)
    sections = dict((block.split(':\n', 1)[0], block)
                    for block in out.getvalue().split('\n\n')[1:])
    for component in registered_components():
        assert f"type='{component.type}'" in sections[component.registry]
    assert 'unusable' not in out.getvalue()


def test_list_components_without_mmsegmentation_says_why():
    out = _run(WITHOUT_MMSEG + '''
        import mmohem
        mmohem.list_components()
        ''')
    assert 'mmdet.registry.TASK_UTILS:' in out
    assert 'mmseg.registry' not in out
    unusable = [line for line in out.splitlines() if 'unusable' in line]
    assert len(unusable) == 3  # mmseg's MODELS, TASK_UTILS and METRICS
    assert all('pip install' in line for line in unusable)


def test_python_m_mmohem_prints_the_listing():
    proc = subprocess.run([sys.executable, '-m', 'mmohem'],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = io.StringIO()
    list_components(out)
    assert proc.stdout == out.getvalue()


@pytest.mark.parametrize('cls, given', [
    (OHEMSampler, dict(num=4, nms_thresh=0.5)),
    (OhemCrossEntropySampler, dict(thres=0.5)),
])
def test_unknown_option_errors_list_user_options_only(cls, given):
    with pytest.raises(TypeError, match='allowed options are') as error:
        cls(context=None, **given)
    allowed = str(error.value).split('allowed options are ')[1]
    assert 'context' not in allowed
    assert allowed.rstrip('.').split(', ') == sorted(
        set(signature_options(cls.__init__)))
