"""Bad and unusual input for the detection OHEM."""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

import mmohem.det.mining_rule as ohem_module
from mmohem.testing.dense_cases import (RETINA_VARIANTS, demo_batch,
                                        small_retinanet)

OHEM = dict(type='mmohem.OHEMSampler', num=32)


def _faster_rcnn(detector_cfg, seed=0):
    cfg = detector_cfg('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.train_cfg.rcnn.sampler = dict(OHEM)
    torch.manual_seed(seed)
    return MODELS.build(cfg)


def _roi_loss(model, data, proposals):
    feats = model.extract_feat(data['inputs'])
    rpn_results = [InstanceData(bboxes=p) for p in proposals]
    return model.roi_head.loss(feats, rpn_results, data['data_samples'])


def test_image_without_proposals_trains(detector_cfg):
    model = _faster_rcnn(detector_cfg)
    data = demo_batch(model, (3, 0), num_classes=80)
    boxes = torch.tensor([[4., 4., 60., 60.], [10., 20., 90., 100.]])
    losses = _roi_loss(model, data, [boxes, torch.zeros(0, 4)])
    total = losses['loss_cls'] + losses['loss_bbox']
    total.backward()
    assert torch.isfinite(total)


def test_zero_area_proposals(detector_cfg):
    model = _faster_rcnn(detector_cfg)
    data = demo_batch(model, (3, 2), num_classes=80)
    boxes = torch.tensor([[10., 10., 10., 10.], [20., 20., 20., 50.],
                          [5., 5., 40., 40.], [5., 5., 40., 40.]])
    losses = _roi_loss(model, data, [boxes, boxes])
    assert torch.isfinite(losses['loss_cls'])


def test_class_index_out_of_range_is_named(detector_cfg):
    model = _faster_rcnn(detector_cfg)
    data = demo_batch(model, (3, 2), num_classes=80)
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
        model(**demo_batch(model, (3, 2), num_classes=80), mode='loss')


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
        model(**demo_batch(model, (3, 2), num_classes=80), mode='loss')
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
    data = demo_batch(model, (0, 0), num_classes=80)
    boxes = torch.tensor([[50., 50., 20., 20.], [5., 5., 40., 40.]])
    _roi_loss(model, data, [boxes, boxes])
    for valid, result in results:
        assert valid.tolist() == [[False, True]]
        assert result.kept.tolist() == [[False, True]]


# Dense heads: OHEMRetinaHead (sigmoid CE), OHEMAnchorHead (softmax CE) and
# OHEMRetinaHead regressing decoded boxes with GIoU.


def _trains(model, data, dtype=None):
    """One training step: its losses, checked finite with finite
    gradients for every parameter of the head."""
    with torch.autocast('cpu', dtype=dtype, enabled=dtype is not None):
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    for param in model.bbox_head.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()
    return losses


@pytest.mark.parametrize('variant', RETINA_VARIANTS)
@pytest.mark.parametrize('num_items', [(0, 0), (0, )])
@pytest.mark.parametrize('dtype', [None, torch.bfloat16])
def test_dense_batch_without_ground_truth_trains(variant, num_items, dtype):
    model = small_retinanet(variant)
    losses = _trains(model, demo_batch(model, num_items, 96), dtype)
    assert all(loss > 0 for loss in losses['loss_cls'])  # mined negatives
    assert all(loss == 0 for loss in losses['loss_bbox'])


@pytest.mark.parametrize('variant', RETINA_VARIANTS)
def test_dense_loss_without_ground_truth_is_upstreams(variant):
    """Every anchor kept: the per-anchor losses sum to mmdet's, which a
    batch without ground truth divides by one per image."""
    from mmdet.models.dense_heads import AnchorHead

    from mmohem.det.ohem_dense_head import ohem_avg_factor
    model = small_retinanet(variant, num=10**6, nms_thr=None)
    head = model.bbox_head
    data = demo_batch(model, (0, 0), 96)
    outs = head(model.extract_feat(data['inputs']))
    args = (*outs, [s.gt_instances for s in data['data_samples']],
            [s.metainfo for s in data['data_samples']])
    ours, upstream = head.loss_by_feat(*args), AnchorHead.loss_by_feat(
        head, *args)
    scale = ohem_avg_factor(2, head.ohem_sampler.rule, 2) / 2
    assert torch.allclose(
        sum(ours['loss_cls']) * scale, sum(upstream['loss_cls']), rtol=1e-4)
    assert sum(ours['loss_bbox']) == sum(upstream['loss_bbox']) == 0


@pytest.mark.parametrize('variant', ['sigmoid', 'giou'])
def test_degenerate_ground_truth_is_skipped_and_named(variant, monkeypatch):
    """A zero-width and an inverted box: skipped with a warning naming
    them, the image trains on its other boxes as if they were not
    annotated (what FilterAnnotations upstream gives)."""
    import mmohem.det.gt_boxes as gt_module
    logged = []
    monkeypatch.setattr(gt_module, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    model = small_retinanet(variant)
    data = demo_batch(model, (3, 2), 96)
    sample = data['data_samples'][0]
    good = sample.gt_instances
    sample.gt_instances = InstanceData(
        bboxes=torch.cat([
            good.bboxes,
            torch.tensor([[10., 10., 10., 50.], [60., 60., 20., 20.]])
        ]),
        labels=torch.cat([good.labels, torch.tensor([1, 2])]))
    sample.set_metainfo(dict(img_path='demo/a.jpg'))
    losses = _trains(model, data)
    msg, = logged
    assert "image 'demo/a.jpg': box 3 [10.0, 10.0, 10.0, 50.0]" in msg
    assert "image 'demo/a.jpg': box 4 [60.0, 60.0, 20.0, 20.0]" in msg
    assert 'FilterAnnotations' in msg
    assert losses['loss_bbox'][0] > 0  # its other boxes train
    model.zero_grad()
    sample.gt_instances = good
    filtered = model(**data, mode='loss')
    for key in ('loss_cls', 'loss_bbox'):
        assert torch.allclose(sum(losses[key]), sum(filtered[key]))
