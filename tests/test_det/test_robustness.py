"""Bad and unusual input for the detection OHEM."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.structures import InstanceData

import mmohem.det.mining_rule as ohem_module

OHEM = dict(type='mmohem.OHEMSampler', num=32)


def _faster_rcnn(detector_cfg, seed=0):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.train_cfg.rcnn.sampler = dict(OHEM)
    torch.manual_seed(seed)
    return MODELS.build(cfg)


def _inputs(model, num_items=(3, 2)):
    packed = demo_mm_inputs(
        len(num_items), (3, 128, 128),
        num_items=list(num_items),
        num_classes=80)
    return model.data_preprocessor(packed, True)


def _roi_loss(model, data, proposals):
    feats = model.extract_feat(data['inputs'])
    rpn_results = [InstanceData(bboxes=p) for p in proposals]
    return model.roi_head.loss(feats, rpn_results, data['data_samples'])


def test_image_without_proposals_trains(detector_cfg):
    model = _faster_rcnn(detector_cfg)
    data = _inputs(model, num_items=(3, 0))
    boxes = torch.tensor([[4., 4., 60., 60.], [10., 20., 90., 100.]])
    losses = _roi_loss(model, data, [boxes, torch.zeros(0, 4)])
    total = losses['loss_cls'] + losses['loss_bbox']
    total.backward()
    assert torch.isfinite(total)


def test_zero_area_proposals(detector_cfg):
    model = _faster_rcnn(detector_cfg)
    data = _inputs(model)
    boxes = torch.tensor([[10., 10., 10., 10.], [20., 20., 20., 50.],
                          [5., 5., 40., 40.], [5., 5., 40., 40.]])
    losses = _roi_loss(model, data, [boxes, boxes])
    assert torch.isfinite(losses['loss_cls'])


def test_class_index_out_of_range_is_named(detector_cfg):
    model = _faster_rcnn(detector_cfg)
    data = _inputs(model)
    data['data_samples'][0].gt_instances.labels[0] = 80
    with pytest.raises(
            ValueError, match=r'`gt_instances.labels` must lie '
            r'in \[0, 79\]'):
        model(**data, mode='loss')


def test_non_finite_scores_are_an_error(detector_cfg, monkeypatch):
    model = _faster_rcnn(detector_cfg)
    real_forward = model.roi_head._bbox_forward

    def nan_forward(*args):
        out = real_forward(*args)
        out['cls_score'] = out['cls_score'] * float('nan')
        return out

    monkeypatch.setattr(model.roi_head, '_bbox_forward', nan_forward)
    with pytest.raises(FloatingPointError, match='non-finite'):
        model(**_inputs(model), mode='loss')


def test_same_seed_selects_the_same_examples(detector_cfg, monkeypatch):
    kept = []
    real = ohem_module.mine_hard_examples

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        kept.append(result.kept)
        return result

    monkeypatch.setattr(ohem_module, 'mine_hard_examples', spy)
    for _ in range(2):
        model = _faster_rcnn(detector_cfg, seed=3)
        torch.manual_seed(3)
        model(**_inputs(model), mode='loss')
    assert len(kept) == 4
    assert all(torch.equal(a, b) for a, b in zip(kept[:2], kept[2:]))


def test_inverted_proposals_are_skipped(detector_cfg, monkeypatch):
    model = _faster_rcnn(detector_cfg)
    results = []
    real = ohem_module.mine_hard_examples

    def spy(*args, **kwargs):
        results.append((args[1], real(*args, **kwargs)))
        return results[-1][1]

    monkeypatch.setattr(ohem_module, 'mine_hard_examples', spy)
    data = _inputs(model, num_items=(0, 0))
    boxes = torch.tensor([[50., 50., 20., 20.], [5., 5., 40., 40.]])
    _roi_loss(model, data, [boxes, boxes])
    for valid, result in results:
        assert valid.tolist() == [[False, True]]
        assert result.kept.tolist() == [[False, True]]
