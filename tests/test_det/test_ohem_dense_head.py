"""mmohem's dense-head adapter on RetinaNet (sigmoid classifier), a plain
AnchorHead (softmax) and a GIoU head on decoded boxes, and its refusals;
SSD goes through the same adapter (test_ohem_ssd_head.py)."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import AnchorHead, ATSSHead, FCOSHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmengine.config import Config
from mmengine.logging import MessageHub

from mmohem.det import OHEMDenseHeadMixin, OHEMRetinaHead
from mmohem.det.mining_rule import BoxMiningRule
from mmohem.det.ohem_dense_head import (DenseTargets, anchor_losses,
                                        dense_targets, join_levels,
                                        levels_to_batch, ohem_avg_factor)
from mmohem.testing.dense_cases import (RETINA_VARIANTS, demo_batch,
                                        retina_case, small_retinanet)
from mmohem.utils.mining_stats import KEY_PREFIX

ROOT = osp.join(osp.dirname(__file__), '..', '..')
RETINA = osp.join(ROOT, 'configs', 'retinanet',
                  'retinanet_r50_fpn_mmohem-ohem_1x_coco.py')
# Every anchor of an image with ground truth kept, normaliser the head's.
KEEP_ALL = dict(num=1, num_per_pos=10**6, nms_thr=None)


def _head_inputs(model, data):
    cls_scores, bbox_preds = model.bbox_head(
        model.extract_feat(data['inputs']))
    gts = [s.gt_instances for s in data['data_samples']]
    metas = [s.metainfo for s in data['data_samples']]
    return cls_scores, bbox_preds, gts, metas


def _spy_mine(monkeypatch, head):
    """The arguments of each call of the head's ``OHEMSampler.mine``."""
    calls = []
    real = head.ohem_sampler.mine

    def mine(losses, valid, is_pos, boxes, labels):
        calls.append(dict(losses=losses, valid=valid, boxes=boxes))
        return real(losses, valid, is_pos, boxes, labels)

    monkeypatch.setattr(head.ohem_sampler, 'mine', mine)
    return calls


def test_sigmoid_per_anchor_loss_is_the_heads_own_loss():
    """Hand-made: two anchors, three classes, one positive of class 1."""
    head = small_retinanet().bbox_head
    scores = torch.tensor([[[0.5, -1.0, 2.0], [-0.3, 0.2, 0.1]]])
    labels = torch.tensor([[1, 3]])  # 3 = background
    targets = DenseTargets(
        scores=scores,
        preds=torch.tensor([[[.1, .2, -.1, 0.], [0.] * 4]]),
        anchors=torch.zeros(1, 2, 4),
        labels=labels,
        is_pos=labels < 3,
        label_weights=torch.tensor([[1., 0.5]]),
        box_targets=torch.tensor([[[.3, .2, .1, .1], [0.] * 4]]),
        box_weights=torch.tensor([[[1.] * 4, [0.] * 4]]),
        avg_factor=1.)
    head.num_classes = head.cls_out_channels = 3
    loss_cls, loss_bbox = anchor_losses(head, targets)
    onehot = torch.tensor([[[0., 1., 0.], [0., 0., 0.]]])
    expected_cls = F.binary_cross_entropy_with_logits(
        scores, onehot, reduction='none').sum(-1) * torch.tensor([1., 0.5])
    assert torch.allclose(loss_cls, expected_cls)
    assert torch.allclose(loss_bbox, torch.tensor([[0.2 + 0.0 + 0.2 + 0.1,
                                                    0.]]))


@pytest.mark.parametrize('variant', RETINA_VARIANTS)
def test_keeping_every_anchor_gives_the_upstream_loss(variant):
    model = small_retinanet(variant, **KEEP_ALL)
    inputs = _head_inputs(model, demo_batch(model, (3, 2)))
    ours = model.bbox_head.loss_by_feat(*inputs)
    upstream = AnchorHead.loss_by_feat(model.bbox_head, *inputs)
    for key in ('loss_cls', 'loss_bbox'):
        assert sum(upstream[key]) > 0
        assert torch.allclose(sum(ours[key]), sum(upstream[key]), rtol=1e-4)


def test_training_step_mines_and_logs(monkeypatch):
    model = small_retinanet()
    calls = _spy_mine(monkeypatch, model.bbox_head)
    hub = MessageHub.get_instance('test_ohem_dense_head')
    losses = model(**demo_batch(model, (3, 0)), mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    call, = calls  # one call for the batch
    assert call['losses'].shape[0] == 2
    assert losses['loss_cls'][1] > 0  # no ground truth: mined negatives
    assert all(p.grad is not None for p in model.bbox_head.parameters())
    logged = {k: v.current() for k, v in hub.log_scalars.items()}
    assert logged[f'{KEY_PREFIX}kept_neg'] > 0


@pytest.mark.parametrize('reg_decoded_bbox', [False, True])
def test_predicted_nms_boxes_are_the_decoded_predictions(
        reg_decoded_bbox, monkeypatch):
    """The head predicts deltas either way: with ``reg_decoded_bbox`` only
    its box loss compares decoded boxes."""
    variant = 'giou' if reg_decoded_bbox else 'sigmoid'
    model = small_retinanet(variant, nms_boxes='predicted')
    head = model.bbox_head
    assert head.reg_decoded_bbox is reg_decoded_bbox
    calls = _spy_mine(monkeypatch, head)
    inputs = _head_inputs(model, demo_batch(model, (3, 0)))
    head.loss_by_feat(*inputs)
    targets = dense_targets(head, *inputs, None)
    decoded = get_box_tensor(
        head.bbox_coder.decode(
            targets.anchors.reshape(-1, 4), targets.preds.reshape(-1, 4)))
    boxes = calls[0]['boxes']
    assert torch.allclose(boxes, decoded.view_as(boxes))
    assert not torch.allclose(boxes, targets.preds)
    assert (boxes[..., 2:] >= boxes[..., :2]).all()


def test_levels_become_anchor_rows_in_the_targets_order():
    """Levels of 2, 2 and 3 anchors per location, 2 values each."""
    maps = [torch.randn(2, k * 2, h, h) for k, h in ((2, 3), (2, 2), (3, 1))]
    expected = torch.cat(
        [m.permute(0, 2, 3, 1).reshape(2, -1, 2) for m in maps], 1)
    assert torch.equal(levels_to_batch(maps, 2), expected)


def test_targets_join_without_copy_only_when_they_are_one_tensor():
    whole = torch.stack([torch.arange(7.), torch.arange(7.) + 7])  # mmdet's
    sliced = [whole[:, :3], whole[:, 3:4], whole[:, 4:]]
    assert join_levels(sliced) is whole
    apart = [whole[:, :3].clone(), whole[:, 3:4], whole[:, 4:]]
    assert torch.equal(join_levels(apart), whole)
    shuffled = [whole[:, 4:], whole[:, :3], whole[:, 3:4]]
    assert torch.equal(join_levels(shuffled), torch.cat(shuffled, 1))


def test_normaliser_is_the_heads_above_the_kept_per_positive():
    ssd = BoxMiningRule('t', num=64, num_per_pos=4)
    assert ohem_avg_factor(2, ssd, 2) == 32  # no positive: 16 per image
    assert ohem_avg_factor(50, ssd, 2) == 50
    retina = BoxMiningRule('t', num=128)
    assert ohem_avg_factor(2, retina, 2) == 256
    assert ohem_avg_factor(300, retina, 2) == 300


def test_background_batch_weighs_like_a_normal_one():
    """RetinaNet, 128 kept anchors per image: divided by the head's
    normaliser alone (1 per image), a batch without ground truth would
    weigh 128 times more per kept anchor."""
    totals = {}
    for gts in (0, 4):
        ours, _ = retina_case(gts=gts)
        totals[gts] = float(sum(sum(v) for v in ours().values()))
    assert 0.5 < totals[0] / totals[4] < 2


class _ScalarLoss(torch.nn.Module):
    """A box loss that returns one value, whatever the reduction."""

    def forward(self, pred, *args, **kwargs):
        return pred.sum()


def test_loss_without_one_value_per_anchor_is_named(monkeypatch):
    model = small_retinanet()
    head = model.bbox_head
    monkeypatch.setitem(head._modules, 'loss_bbox', _ScalarLoss())
    with pytest.raises(
            TypeError,
            match=r'one loss per anchor: _ScalarLoss returned shape \(\)'):
        head.loss_by_feat(*_head_inputs(model, demo_batch(model, (3, 0))))


def test_dense_heads_reject_roi_options():
    with pytest.raises(
            TypeError,
            match=r'`smooth_l1_beta` is not used for '
            r'OHEMRetinaHead \(a dense head\)'):
        small_retinanet(smooth_l1_beta=1.0)


@pytest.mark.parametrize('base', [ATSSHead, FCOSHead])
def test_heads_it_cannot_drive_are_refused_by_name(base):
    head_cls = type('Mined', (OHEMDenseHeadMixin, base), {})
    with pytest.raises(TypeError, match=f'OHEM cannot drive {base.__name__}'):
        head_cls(num_classes=3, in_channels=8)


def test_ohem_sampler_in_a_head_it_cannot_drive_names_it():
    cfg = Config.fromfile(RETINA)
    cfg.model.bbox_head.type = 'ATSSHead'
    cfg.model.bbox_head.pop('loss_cls')
    cfg.model.backbone.init_cfg = None
    with pytest.raises(TypeError, match=r'built for ATSSHead.*FCOS, ATSS'):
        MODELS.build(cfg.model)


def test_retina_head_is_registered_in_the_mmohem_scope():
    assert MODELS.get('mmohem.OHEMRetinaHead') is OHEMRetinaHead


def test_box_loss_that_needs_label_weights_is_refused_by_name():
    cfg = Config.fromfile(RETINA)
    cfg.model.bbox_head.loss_bbox = dict(
        type='GHMR', mu=0.02, bins=10, momentum=0.7, loss_weight=10.0)
    with pytest.raises(TypeError, match='GHMR also needs `label_weight`'):
        MODELS.build(cfg.model)
