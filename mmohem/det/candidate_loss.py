"""Mean loss of a detector over all its training candidates, from one
read-only pass: every RoI of the RoI head, every anchor of a dense head.

OHEM's claim is about this quantity (the paper's optimisation argument):
training on the hardest examples should lower the loss over all of them,
not only over the kept ones. It is measured with the model's own losses
and targets, so the baseline and the OHEM twin of a config are measured
alike.
"""
import sys

import torch
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import BaseSampler
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from torch import Tensor, nn

from .ohem_dense_head import anchor_losses, dense_targets


class KeepAllSampler(BaseSampler):
    """Keeps every candidate (and the ground truth boxes if asked)."""

    def __init__(self, add_gt_as_proposals: bool) -> None:
        super().__init__(
            num=sys.maxsize,
            pos_fraction=1.0,
            add_gt_as_proposals=add_gt_as_proposals)

    def _sample_pos(self, assign_result, num_expected: int,
                    **kwargs) -> Tensor:
        return torch.nonzero(assign_result.gt_inds > 0).squeeze(1)

    def _sample_neg(self, assign_result, num_expected: int,
                    **kwargs) -> Tensor:
        return torch.nonzero(assign_result.gt_inds == 0).squeeze(1)


def check_detector(detector: nn.Module) -> None:
    """Raise ``TypeError`` unless :func:`detector_candidate_loss` can
    measure ``detector``."""
    roi_head = getattr(detector, 'roi_head', None)
    head = getattr(detector, 'bbox_head', None)
    if roi_head is not None:
        if getattr(detector, 'rpn_head', None) is None or not hasattr(
                roi_head, 'bbox_sampler') or isinstance(
                    roi_head.bbox_sampler, (list, nn.ModuleList)):
            raise TypeError(
                'candidate loss: a two-stage detector needs an RPN and a '
                f'single-stage RoI head, got {type(roi_head).__name__} '
                '(cascades are not measured).')
    elif not isinstance(head, AnchorHead):
        raise TypeError(
            'candidate loss: measures two-stage detectors (RPN + RoI head) '
            'and AnchorHead dense heads (RetinaNet, SSD), got '
            f'{type(detector).__name__} with {type(head).__name__}.')


def detector_candidate_loss(detector: nn.Module, inputs: Tensor,
                            data_samples: SampleList) -> Tensor:
    """Mean per-candidate loss of a batch.

    Two-stage: the RoI head's plain ``loss_cls + loss_bbox`` (that of
    ``StandardRoIHead`` for its subclasses: no re-weighting of the
    examples, such as PISA's) with every proposal
    of the training proposal settings (plus the ground truth boxes when the
    config's sampler adds them) kept; both are normalised by the number of
    RoIs, so their sum is the mean loss per RoI. Dense heads: the mean over
    every anchor with a nonzero label weight of the per-anchor
    classification plus box loss (:func:`anchor_losses`).

    Run it under :func:`mmohem.utils.read_only`.

    Args:
        detector (nn.Module): A detector accepted by :func:`check_detector`.
        inputs (Tensor[B, 3, H, W]): Preprocessed images.
        data_samples (list[DetDataSample]): Their ground truth and metas.

    Returns:
        Tensor: 0-dim, float32.
    """
    feats = detector.extract_feat(inputs)
    if getattr(detector, 'roi_head', None) is not None:
        return _roi_loss(detector, feats, data_samples)
    head = detector.bbox_head
    gts, ignores, metas = unpack_gt_instances(data_samples)
    targets = dense_targets(head, *head(feats), gts, metas, ignores)
    loss_cls, loss_bbox = anchor_losses(head, targets)
    valid = targets.label_weights > 0
    return ((loss_cls + loss_bbox) * valid).sum() / valid.sum().clamp(min=1)


def _roi_loss(detector: nn.Module, feats: tuple,
              data_samples: SampleList) -> Tensor:
    proposal_cfg = detector.train_cfg.get('rpn_proposal',
                                          detector.test_cfg.rpn)
    metas = [sample.metainfo for sample in data_samples]
    proposals = detector.rpn_head.predict_by_feat(
        *detector.rpn_head(feats), batch_img_metas=metas, cfg=proposal_cfg)
    roi_head = detector.roi_head
    keep_all = KeepAllSampler(
        roi_head.train_cfg.sampler.get('add_gt_as_proposals', True))
    if isinstance(roi_head, StandardRoIHead):
        losses = _plain_bbox_loss(roi_head, keep_all, feats, proposals,
                                  data_samples)
    else:
        sampler, roi_head.bbox_sampler = roi_head.bbox_sampler, keep_all
        try:
            losses = roi_head.loss(feats, proposals, data_samples)
        finally:
            roi_head.bbox_sampler = sampler
    return (losses['loss_cls'] + losses['loss_bbox']).float()


def _plain_bbox_loss(roi_head: StandardRoIHead, sampler: BaseSampler,
                     feats: tuple, proposals: list,
                     data_samples: SampleList) -> dict:
    """``StandardRoIHead``'s box loss of the candidates ``sampler`` keeps,
    whatever a subclass's own loss does besides (PISA re-weights the
    examples and needs its own sampler's weights)."""
    gts, ignores, _ = unpack_gt_instances(data_samples)
    results = []
    for found, gt, ignore in zip(proposals, gts, ignores):
        found.priors = found.pop('bboxes')
        assigned = roi_head.bbox_assigner.assign(found, gt, ignore)
        results.append(sampler.sample(assigned, found, gt))
    return StandardRoIHead.bbox_loss(roi_head, feats, results)['loss_bbox']
