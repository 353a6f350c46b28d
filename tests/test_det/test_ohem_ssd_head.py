import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

import mmohem.det.mining_rule as ohem_module
from mmohem.det import OHEMSampler, OHEMSSDHead
from mmohem.det.dense_miner import DenseBoxMiner
from mmohem.det.ohem_dense_head import dense_targets
from mmohem.testing.dense_cases import ssd_case

SSD300 = 'configs/ssd/ssd300_mmohem-ohem_coco.py'
SSDLITE = ('configs/ssd/'
           'ssdlite_mobilenetv2-scratch_mmohem-ohem_8xb24-600e_coco.py')


class _DenseContext:
    ohem_dense_head = True


def _model(config, **sampler):
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.model.train_cfg.sampler.update(sampler)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _batch(model, size, num_items=(3, 0)):
    packed = demo_mm_inputs(
        len(num_items), (3, size, size),
        num_items=list(num_items),
        num_classes=80)
    return model.data_preprocessor(packed, True)


def _spy(monkeypatch):
    calls = []
    real = ohem_module.mine_hard_examples

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, result))
        return result

    monkeypatch.setattr(ohem_module, 'mine_hard_examples', spy)
    return calls


def _pairwise_iou(boxes):
    lt = torch.max(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(-1)
    return inter / (area[:, None] + area[None] - inter)


@pytest.mark.parametrize('config, size', [(SSD300, 300), (SSDLITE, 320)])
def test_training_step_mines_hard_anchors(config, size, monkeypatch):
    model = _model(config)
    calls = _spy(monkeypatch)
    data = _batch(model, size)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.bbox_head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    (args, result), = calls  # one batched call for all images
    mine_losses, valid, is_pos, boxes, num, thr, labels = args[:7]
    assert mine_losses.shape[0] == 2 and thr == 0.7
    expected_num = (4 * is_pos.sum(1)).clamp(min=64)
    assert num == expected_num.tolist()  # known on the host
    kept = result.kept
    assert torch.equal(kept.sum(1), expected_num)
    assert not is_pos[1].any() and kept[1].sum() == 64
    for b in range(2):
        rest = valid[b] & ~kept[b] & ~result.suppressed[b]
        assert mine_losses[b][kept[b]].min() >= mine_losses[b][rest].max()
        kept_boxes, kept_labels = boxes[b][kept[b]], labels[b][kept[b]]
        same = kept_labels[:, None] == kept_labels[None]
        iou = _pairwise_iou(kept_boxes).masked_fill(~same, 0)
        assert (iou.triu(1) <= 0.7).all()
    # the image without ground truth contributes mined negatives
    assert losses['loss_cls'][1] > 0


def test_normaliser_is_ssd_positive_count():
    # every anchor of an image with ground truth kept
    model = _model(SSDLITE, num=1, num_per_pos=10**6, nms_thr=None)
    head = model.bbox_head
    data = _batch(model, 320, num_items=(4, 2))
    feats = model.extract_feat(data['inputs'])
    cls_scores, bbox_preds = head(feats)
    gts = [s.gt_instances for s in data['data_samples']]
    metas = [s.metainfo for s in data['data_samples']]
    ours = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    upstream = super(OHEMSSDHead, head).loss_by_feat(cls_scores, bbox_preds,
                                                     gts, metas)
    # every anchor kept: box loss equals SSDHead's (same positives, same
    # normaliser); cls loss is the CE of all anchors over that normaliser
    assert torch.allclose(sum(ours['loss_bbox']), sum(upstream['loss_bbox']))
    targets = dense_targets(head, cls_scores, bbox_preds, gts, metas, None)
    scores, labels, weights = (targets.scores, targets.labels,
                               targets.label_weights)
    avg_factor = targets.avg_factor
    num_pos = ((labels >= 0) & (labels < head.num_classes)).sum(1)
    assert avg_factor == num_pos.clamp(min=1).sum()
    ce = F.cross_entropy(
        scores.flatten(0, 1), labels.flatten(),
        reduction='none') * weights.flatten()
    assert torch.allclose(
        sum(ours['loss_cls']), ce.sum() / avg_factor, rtol=1e-4)


def test_hand_made_anchors():
    sampler = DenseBoxMiner(num=1, num_per_pos=2, nms_thr=0.7)
    anchors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.5],
                            [0.5, 0., 10., 10.], [40., 40., 50., 50.],
                            [60., 60., 70., 70.]])
    boxes = anchors.expand(2, 5, 4)
    losses = torch.tensor([[5., 4., 3., 2., 1.], [5., 4., 3., 2., 1.]])
    is_pos = torch.tensor([[True, False, False, False, True], [False] * 5])
    labels = torch.where(is_pos, 0, 80)
    valid = torch.ones(2, 5, dtype=torch.bool)
    result, kept_pos = sampler.mine(losses, valid, is_pos, boxes, labels)
    assert torch.equal(kept_pos, result.kept & is_pos)
    # image 0: 2 positives -> 4 kept; anchor 2 (negative) duplicates
    # anchor 1 (negative, higher loss): suppressed; anchor 0 is positive, so
    # per-label NMS keeps it beside anchor 1.
    assert result.kept[0].tolist() == [True, True, False, True, True]
    # image 1: no positive -> num=1 hardest negative
    assert result.kept[1].tolist() == [True, False, False, False, False]


def test_roi_sampler_is_not_for_dense_heads():
    with pytest.raises(
            TypeError, match='builds its own miner from '
            '`train_cfg.sampler`'):
        OHEMSampler(num=8, context=_DenseContext())


def test_dense_head_builds_its_miner_from_the_sampler_dict():
    model = _model(SSDLITE, nms_boxes='predicted')
    miner = model.bbox_head.ohem_sampler
    assert type(miner) is DenseBoxMiner and miner.nms_boxes == 'predicted'
    assert type(model.bbox_head.sampler).__name__ == 'PseudoSampler'


@pytest.mark.parametrize('option', ['score_chunk', 'add_gt_as_proposals'])
def test_roi_options_are_refused_by_dense_heads(option):
    with pytest.raises(TypeError, match=f'`{option}` is not used for '):
        _model(SSDLITE, **{option: 1})


def test_head_needs_the_ohem_sampler():
    cfg = Config.fromfile(SSDLITE)
    cfg.model.train_cfg.sampler = dict(type='PseudoSampler')
    with pytest.raises(TypeError, match="must be dict\\(type='mmohem"):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('option, value, match', [
    ('num_per_pos', 0, r'`num_per_pos` must be a number > 0'),
    ('nms_boxes', 'anchors', r"`nms_boxes` must be one of 'candidates', "
     r"'predicted'"),
    ('neg_pos_ratio', 3, r'unknown option\(s\) `neg_pos_ratio`'),
])
def test_invalid_options(option, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _model(SSDLITE, **{option: value})


def test_predicted_boxes_for_nms(monkeypatch):
    boxes = {}
    for choice in ('candidates', 'predicted'):
        model = _model(SSDLITE, nms_boxes=choice)
        calls = _spy(monkeypatch)
        loss, _ = model.parse_losses(model(**_batch(model, 320), mode='loss'))
        loss.backward()
        (args, _), = calls
        boxes[choice] = args[3]
    assert boxes['predicted'].shape == boxes['candidates'].shape
    assert not torch.allclose(boxes['predicted'], boxes['candidates'])
    widths = boxes['candidates'][..., 2] - boxes['candidates'][..., 0]
    assert (widths > 0).all()  # prior anchors


def test_background_batch_weighs_like_a_normal_one():
    """SSD300 keeps 64 anchors of an image without positives: divided by
    the head's normaliser alone (1 per image), a batch without ground
    truth would weigh 16 times more per kept anchor than one whose images
    have 16 positives (the normaliser's floor: num / num_per_pos)."""
    ours, upstream = {}, {}
    for gts in (0, 4):
        steps = ssd_case(gts=gts)
        ours[gts], upstream[gts] = (
            float(sum(sum(v) for v in step().values())) for step in steps)
    assert upstream[0] == 0  # 3:1 mining: no positive, no negative kept
    assert 0.5 < ours[4] / upstream[4] < 2
    assert 0.5 < ours[0] / upstream[4] < 2
