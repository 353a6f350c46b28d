import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler
from mmohem.testing.pixel_cases import seg_data_samples

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'pspnet')
SAMPLER = 'pspnet_r50-d8_mmohem-ohem_4xb2-40k_cityscapes-512x1024.py'
LOSS = 'pspnet_r50-d8_mmohem-ohem-loss_4xb2-40k_cityscapes-512x1024.py'
ADE = 'pspnet_r50-d8_mmohem-ohem_4xb4-80k_ade20k-512x512.py'
BASES = {
    SAMPLER: 'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    LOSS: 'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    ADE: 'pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py',
}
OHEM = dict(type='mmohem.OhemCrossEntropy', thresh=0.7)
# What each config changes in its base, head by head.
SWAPS = {
    SAMPLER:
    dict(decode_head=dict(sampler=dict(OHEM, min_kept=100000))),
    LOSS:
    dict(
        decode_head=dict(
            loss_decode=dict(OHEM, min_kept=100000, loss_weight=1.0)),
        auxiliary_head=dict(
            loss_decode=dict(OHEM, min_kept=100000, loss_weight=0.4))),
    ADE:
    dict(decode_head=dict(sampler=dict(OHEM, min_kept_ratio=1 / 16))),
}


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _plain(value):
    """Config as plain dicts, without the ``_scope_`` keys of a base."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _small(model_cfg):
    """R18 PSPNet, BN instead of SyncBN, no pretrained weights."""
    model_cfg.pretrained = None
    model_cfg.backbone.update(depth=18, init_cfg=None)
    model_cfg.decode_head.update(in_channels=512, channels=16)
    model_cfg.auxiliary_head.update(in_channels=256, channels=16)
    for part in ('backbone', 'decode_head', 'auxiliary_head'):
        model_cfg[part].norm_cfg = dict(type='BN', requires_grad=True)
    return model_cfg


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_config_only_swaps_in_ohem(name):
    cfg = Config.fromfile(osp.join(ROOT, name))
    assert cfg.custom_imports == dict(
        imports=['mmohem'], allow_failed_imports=False)
    base = get_config(f'mmseg::{BASES[name]}')
    assert cfg.default_scope == base.default_scope == 'mmseg'
    ours = _plain(cfg.to_dict())
    theirs = _plain(base.to_dict())
    for key in set(ours) | set(theirs):
        if key not in ('model', 'custom_imports'):
            assert ours.get(key) == theirs.get(key), key
    for head, swap in SWAPS[name].items():
        theirs['model'][head].update(swap)
    assert ours['model'] == theirs['model']


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_config_builds(name):
    model = MODELS.build(_small(Config.fromfile(osp.join(ROOT, name)).model))
    head, aux = model.decode_head, model.auxiliary_head
    if name == LOSS:
        assert head.sampler is None
        assert isinstance(head.loss_decode, OhemCrossEntropyLoss)
        assert isinstance(aux.loss_decode, OhemCrossEntropyLoss)
        assert aux.loss_decode.loss_weight == 0.4
    else:
        assert isinstance(head.sampler, OhemCrossEntropySampler)
        assert head.sampler.context is head
    num_classes = 150 if name == ADE else 19
    assert head.num_classes == aux.num_classes == num_classes


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_training_step(name, monkeypatch):
    torch.manual_seed(0)
    model = MODELS.build(_small(Config.fromfile(osp.join(
        ROOT, name)).model)).train()
    mined = []
    if name == LOSS:
        for loss in (model.decode_head.loss_decode,
                     model.auxiliary_head.loss_decode):
            loss.rule.min_kept = 500
    else:
        model.decode_head.sampler.rule.min_kept = \
            None if name == ADE else 500
        sample = model.decode_head.sampler.sample
        monkeypatch.setattr(model.decode_head.sampler, 'sample',
                            lambda *a: mined.append(sample(*a)) or mined[-1])
    labels = torch.randint(0, model.decode_head.num_classes, (2, 64, 64))
    labels[:, :8] = 255
    losses = model.loss(torch.randn(2, 3, 64, 64), seg_data_samples(labels))
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    if name != LOSS:
        assert len(mined) == 1
        kept = mined[0]
        assert kept.shape == labels.shape and not kept[labels == 255].any()
        assert kept.sum() >= (1000 if name == SAMPLER else
                              (labels != 255).sum() // 16)


def test_training_step_with_all_ignored_labels():
    model = MODELS.build(_small(Config.fromfile(osp.join(
        ROOT, LOSS)).model)).train()
    labels = torch.full((2, 64, 64), 255)
    losses = model.loss(torch.randn(2, 3, 64, 64), seg_data_samples(labels))
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert loss.item() == 0
    assert all(
        torch.isfinite(p.grad).all() for p in model.parameters()
        if p.grad is not None)
