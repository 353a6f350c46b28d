"""The configs of the AMP gradient check keep the RPN's proposal NMS in
one call of mmcv's ``batched_nms``, whose split path fails on low-precision
scores."""
import pytest
import torch
from mmcv.ops import batched_nms

from mmohem.testing import amp_grads, rpn_nms_in_one_call, small_detector

C4 = 'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'


def _rpn_like(boxes: int):
    """Float32 boxes (decoded under autocast) with float16 scores."""
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(boxes, 2, generator=gen) * 500
    wh = torch.rand(boxes, 2, generator=gen) * 50 + 1
    scores = torch.rand(boxes, generator=gen).half()
    levels = torch.randint(0, 5, (boxes, ), generator=gen)
    return torch.cat([xy, xy + wh], 1), scores, levels


def test_upstream_split_path_fails_on_float16_scores():
    boxes, scores, levels = _rpn_like(10500)
    with pytest.raises(RuntimeError, match='dtypes match'):
        batched_nms(boxes, scores, levels, dict(iou_threshold=0.7))


def test_one_call_rpn_nms_takes_float16_scores():
    model = rpn_nms_in_one_call(small_detector(C4))
    nms_cfg = dict(model.train_cfg.rpn_proposal.nms)
    assert nms_cfg['split_thr'] > model.train_cfg.rpn_proposal.nms_pre
    nms_cfg.pop('type')
    boxes, scores, levels = _rpn_like(10500)
    dets, keep = batched_nms(boxes, scores, levels, nms_cfg)
    assert dets.dtype == torch.float32 and 0 < len(keep) <= 10500


def test_the_check_builds_its_detectors_with_one_call_rpn_nms(monkeypatch):
    split_thrs = []

    class Built(Exception):
        """Stops the check once the first detector's config is made."""

    def spy(model):
        proposal = rpn_nms_in_one_call(model).train_cfg.rpn_proposal
        split_thrs.append((proposal.nms.split_thr, proposal.nms_pre))
        raise Built

    monkeypatch.setattr(amp_grads, 'rpn_nms_in_one_call', spy)
    with pytest.raises(Built):
        amp_grads.amp_gradient_check(C4, 'cpu', torch.bfloat16)
    [(split_thr, nms_pre)] = split_thrs
    assert split_thr > nms_pre
