"""mmohem's dense-head adapter on RetinaNet (sigmoid classifier) and its
refusals; SSD goes through the same adapter (test_ohem_ssd_head.py)."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import AnchorHead, ATSSHead, FCOSHead
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.logging import MessageHub

import mmohem.det.mining_rule as rule_module
from mmohem.det import OHEMDenseHeadMixin, OHEMRetinaHead
from mmohem.det.ohem_dense_head import DenseTargets, anchor_losses

ROOT = osp.join(osp.dirname(__file__), '..', '..')
RETINA = osp.join(ROOT, 'configs', 'retinanet',
                  'retinanet_r50_fpn_mmohem-ohem_1x_coco.py')


def _model(**sampler):
    cfg = Config.fromfile(RETINA)
    model_cfg = cfg.model
    model_cfg.backbone.update(depth=18, init_cfg=None)
    model_cfg.neck.in_channels = [64, 128, 256, 512]
    model_cfg.bbox_head.update(
        num_classes=5, stacked_convs=1, feat_channels=64)
    model_cfg.train_cfg.sampler.update(sampler)
    torch.manual_seed(0)
    return MODELS.build(model_cfg).train()


def _data(model, num_items=(3, 0)):
    packed = demo_mm_inputs(
        len(num_items), (3, 128, 128),
        num_items=list(num_items),
        num_classes=5)
    return model.data_preprocessor(packed, True)


def _head_inputs(model, data):
    cls_scores, bbox_preds = model.bbox_head(
        model.extract_feat(data['inputs']))
    gts = [s.gt_instances for s in data['data_samples']]
    metas = [s.metainfo for s in data['data_samples']]
    return cls_scores, bbox_preds, gts, metas


def test_sigmoid_per_anchor_loss_is_the_heads_own_loss():
    """Hand-made: two anchors, three classes, one positive of class 1."""
    head = _model().bbox_head
    scores = torch.tensor([[[0.5, -1.0, 2.0], [-0.3, 0.2, 0.1]]])
    labels = torch.tensor([[1, 3]])  # 3 = background
    targets = DenseTargets(
        scores=scores,
        preds=torch.tensor([[[.1, .2, -.1, 0.], [0.] * 4]]),
        anchors=torch.zeros(1, 2, 4),
        labels=labels,
        label_weights=torch.ones(1, 2),
        box_targets=torch.tensor([[[.3, .2, .1, .1], [0.] * 4]]),
        box_weights=torch.tensor([[[1.] * 4, [0.] * 4]]),
        avg_factor=1.)
    head.num_classes = head.cls_out_channels = 3
    loss_cls, loss_bbox = anchor_losses(head, targets)
    onehot = torch.tensor([[[0., 1., 0.], [0., 0., 0.]]])
    expected_cls = F.binary_cross_entropy_with_logits(
        scores, onehot, reduction='none').sum(-1)
    assert torch.allclose(loss_cls, expected_cls)
    assert torch.allclose(loss_bbox, torch.tensor([[0.2 + 0.0 + 0.2 + 0.1,
                                                    0.]]))


def test_keeping_every_anchor_gives_the_upstream_loss():
    model = _model(num=10**6, nms_thr=None)
    inputs = _head_inputs(model, _data(model))
    ours = model.bbox_head.loss_by_feat(*inputs)
    upstream = AnchorHead.loss_by_feat(model.bbox_head, *inputs)
    for key in ('loss_cls', 'loss_bbox'):
        assert torch.allclose(sum(ours[key]), sum(upstream[key]), rtol=1e-4)


def test_training_step_mines_and_logs(monkeypatch):
    model = _model()
    calls = []
    real = rule_module.mine_hard_examples

    def spy(*args, **kwargs):
        calls.append((args, real(*args, **kwargs)))
        return calls[-1][1]

    monkeypatch.setattr(rule_module, 'mine_hard_examples', spy)
    hub = MessageHub.get_instance('test_ohem_dense_head')
    losses = model(**_data(model), mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    (args, result), = calls  # one call for the batch
    losses_arg, valid, is_pos, boxes, num, nms_thr = args[:6]
    assert num == 128 and nms_thr == 0.5 and losses_arg.shape[0] == 2
    assert result.kept.sum(1).tolist() == [128, 128]
    assert not is_pos[1].any()  # no ground truth: 128 mined negatives
    assert losses['loss_cls'][1] > 0
    assert all(p.grad is not None for p in model.bbox_head.parameters())
    scalars = hub.log_scalars
    for name in ('num_pos', 'num_neg', 'nms_suppressed', 'loss_kept',
                 'loss_all'):
        assert f'train/ohem/{name}' in scalars
    assert scalars['train/ohem/num_neg'].current() > 0


def test_dense_heads_reject_roi_options():
    with pytest.raises(
            TypeError,
            match=r'`smooth_l1_beta` is not used for '
            r'OHEMRetinaHead \(a dense head\)'):
        _model(smooth_l1_beta=1.0)


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
