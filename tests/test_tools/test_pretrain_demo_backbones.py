"""tools/pretrain_demo_backbones.py and the checkpoints it shipped."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Every demo config and the shipped checkpoint its backbone starts from.
DEMO_BACKBONES = {
    'faster-rcnn_r18-tiny_fpn_demo.py': 'resnet18-tiny',
    'retinanet_r18-tiny_fpn_demo.py': 'resnet18-tiny',
    'pspnet_r18-tiny-d8_demo.py': 'resnetv1c18-tiny',
    'ssdlite_mobilenetv2-tiny_demo.py': 'mobilenetv2-tiny',
}


@pytest.fixture(scope='module')
def pretrain(load_tool):
    return load_tool('pretrain_demo_backbones')


def test_a_few_iterations_write_checkpoint_and_provenance(pretrain, tmp_path):
    records = pretrain.main([
        '--out',
        str(tmp_path), '--backbones', 'resnet18-tiny', '--train-scenes', '6',
        '--val-scenes', '2', '--crop-size', '32', '--iters', '3',
        '--batch-size', '8', '--seed', '1'
    ])
    assert [r['name'] for r in records] == ['resnet18-tiny']
    with open(tmp_path / 'resnet18-tiny.json') as f:
        record = json.load(f)
    assert record['settings']['seed'] == 1
    assert record['settings']['iters'] == 3
    assert 0 <= record['val_accuracy'] <= 100
    assert record['crops']['train'] > 6
    state = torch.load(tmp_path / 'resnet18-tiny.pth')
    assert 'conv1.weight' in state and not any(
        k.startswith(('backbone.', 'fc.')) for k in state)


@pytest.mark.parametrize('config,name', sorted(DEMO_BACKBONES.items()))
def test_demo_configs_start_from_the_shipped_checkpoints(config, name):
    import importlib
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', config))
    scope = cfg.default_scope
    importlib.import_module(f'{scope}.utils').register_all_modules(False)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    model.init_weights()
    shipped = torch.load(osp.join(ROOT, 'checkpoints', 'demo', f'{name}.pth'))
    loaded = model.backbone.state_dict()
    assert set(shipped) == set(loaded)
    assert all(torch.equal(shipped[k], loaded[k]) for k in shipped)
    with open(osp.join(ROOT, 'checkpoints', 'demo', f'{name}.json')) as f:
        provenance = json.load(f)
    assert provenance['name'] == name and provenance['command']
    assert provenance['val_accuracy'] > 100 / len(provenance['classes'])


def test_every_demo_config_is_listed():
    import glob
    configs = {
        osp.basename(p)
        for p in glob.glob(osp.join(ROOT, 'configs', 'demo', '*_demo.py'))
    }
    # A baseline names its backbone's base config; an arm inherits from
    # another demo config.
    baselines = set()
    for config in configs:
        with open(osp.join(ROOT, 'configs', 'demo', config)) as f:
            if "_demo.py'" not in f.read().split('_base_ = ', 1)[1][:80]:
                baselines.add(config)
    assert baselines == set(DEMO_BACKBONES)
