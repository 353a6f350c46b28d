"""OHEM for anchor-based dense heads: one adapter for every ``AnchorHead``
whose loss is per anchor (RetinaNet, SSD, a plain ``AnchorHead``).

The per-anchor losses are computed once, with the head's own loss modules
(``reduction_override='none'``): their detached sum ranks the anchors, the
originals carry the gradient. :class:`OHEMSampler`'s mining rule picks the
kept anchors of each image; anchors not kept contribute to no loss; both
losses are divided by the head's own normaliser, so the upstream learning
rate applies; an image without ground truth still contributes its ``num``
hardest negatives.
"""
from typing import Dict, List, NamedTuple, Tuple

import torch
from mmdet.models.dense_heads import AnchorHead, RetinaHead
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList
from torch import Tensor

from mmohem.mining import box_losses, cls_losses
from mmohem.registry import DET_MODELS
from .ohem_sampler import OHEMSampler, check_gt_labels


class DenseTargets(NamedTuple):
    """Predictions and targets of every anchor of a batch, batch-first.

    Attributes:
        scores (Tensor[B, A, C']): Class scores (``cls_out_channels``).
        preds (Tensor[B, A, D]): Box predictions (encoded).
        anchors (Tensor[B, A, 4]): Prior anchors.
        labels (Tensor[B, A]): Target labels, ``num_classes`` for background.
        label_weights (Tensor[B, A]): 0 for anchors to ignore.
        box_targets (Tensor[B, A, D]): Box regression targets.
        box_weights (Tensor[B, A, D]): 0 for anchors without a box target.
        avg_factor (float): The head's loss normaliser.
    """
    scores: Tensor
    preds: Tensor
    anchors: Tensor
    labels: Tensor
    label_weights: Tensor
    box_targets: Tensor
    box_weights: Tensor
    avg_factor: float


class OHEMDenseHeadMixin:
    """Loss of an ``AnchorHead`` subclass trained with OHEM.

    Put it first among the bases (``class H(OHEMDenseHeadMixin,
    RetinaHead)``); every argument of the head is unchanged and
    ``train_cfg.sampler`` must be ``dict(type='mmohem.OHEMSampler', ...)``,
    which holds the mining options. Heads whose loss is not per anchor
    (their own ``loss_by_feat_single`` or ``get_targets``: ATSS, GFL, PAA,
    FSAF, FreeAnchor, ...) are refused by name; anchor-free heads (FCOS,
    ...) are no ``AnchorHead``.
    """

    ohem_dense_head = True

    def __init__(self, *args, **kwargs) -> None:
        check_dense_head(type(self))
        super().__init__(*args, **kwargs)
        if self.train_cfg is None:
            return
        if not isinstance(self.sampler, OHEMSampler):
            raise TypeError(
                f'mmohem.{type(self).__name__}: `train_cfg.sampler` must be '
                "dict(type='mmohem.OHEMSampler', ...), got "
                f'{type(self.sampler).__name__}.')
        self.ohem_sampler = self.sampler
        self.sampler = PseudoSampler(context=self)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, List[Tensor]]:
        """Losses of the mined anchors.

        Args:
            cls_scores (list[Tensor]): Per level,
                Tensor[B, num_anchors * cls_out_channels, H, W].
            bbox_preds (list[Tensor]): Per level,
                Tensor[B, num_anchors * 4, H, W].
            batch_gt_instances (list[InstanceData]): ``bboxes`` and
                ``labels`` of each image.
            batch_img_metas (list[dict]): Meta information of each image.
            batch_gt_instances_ignore (list[InstanceData], optional):
                Ignored ground truth of each image.

        Returns:
            dict[str, list[Tensor]]: ``loss_cls`` and ``loss_bbox``, one
            scalar per image.
        """
        check_gt_labels(
            torch.cat([gt.labels for gt in batch_gt_instances]),
            self.num_classes)
        targets = dense_targets(self, cls_scores, bbox_preds,
                                batch_gt_instances, batch_img_metas,
                                batch_gt_instances_ignore)
        loss_cls, loss_bbox = anchor_losses(self, targets)
        kept = self._mine(loss_cls, loss_bbox, targets)
        return dict(
            loss_cls=list((loss_cls * kept).sum(1) / targets.avg_factor),
            loss_bbox=list((loss_bbox * kept).sum(1) / targets.avg_factor))

    def _mine(self, loss_cls: Tensor, loss_bbox: Tensor,
              targets: DenseTargets) -> Tensor:
        """Kept mask, Tensor[B, A], from the detached per-anchor losses."""
        sampler = self.ohem_sampler
        labels = targets.labels
        is_pos = (labels >= 0) & (labels < self.num_classes)
        boxes = targets.anchors
        if sampler.nms_boxes == 'predicted':
            preds = targets.preds.detach()
            boxes = preds if self.reg_decoded_bbox else get_box_tensor(
                self.bbox_coder.decode(targets.anchors, preds))
        return sampler.mine(
            sampler.rule.ranking_losses(loss_cls, loss_bbox),
            targets.label_weights > 0, is_pos, boxes, labels).kept


def anchor_losses(head: AnchorHead,
                  targets: DenseTargets) -> Tuple[Tensor, Tensor]:
    """Per-anchor classification and box losses of a head, in float32.

    ``SSDHead`` has no loss modules: its losses are softmax cross-entropy
    (times the label weight) and, for positives, smooth-L1 with
    ``train_cfg.smoothl1_beta``. Other heads use their own ``loss_cls`` and
    ``loss_bbox`` with ``reduction_override='none'``; a sigmoid
    classifier's loss is summed over the classes.

    Args:
        head (AnchorHead): The head (with or without OHEM).
        targets (DenseTargets): The batch's predictions and targets.

    Returns:
        tuple[Tensor[B, A], Tensor[B, A]]: Classification and box loss of
        each anchor (the box loss is 0 without a box target).
    """
    labels = targets.labels
    preds = targets.preds
    if head.reg_decoded_bbox:
        preds = get_box_tensor(head.bbox_coder.decode(targets.anchors, preds))
    if isinstance(head, MMDetSSDHead):
        is_pos = (labels >= 0) & (labels < head.num_classes)
        return (cls_losses(targets.scores, labels) * targets.label_weights,
                box_losses(preds, targets.box_targets, is_pos,
                           head.train_cfg['smoothl1_beta']))
    loss_cls = head.loss_cls(
        targets.scores.flatten(0, 1).float(),
        labels.flatten(),
        targets.label_weights.flatten(),
        reduction_override='none')
    loss_bbox = head.loss_bbox(
        preds.flatten(0, 1).float(),
        targets.box_targets.flatten(0, 1).float(),
        targets.box_weights.flatten(0, 1),
        reduction_override='none')
    return (_per_anchor(loss_cls,
                        labels.shape), _per_anchor(loss_bbox, labels.shape))


def dense_targets(head: AnchorHead, cls_scores: List[Tensor],
                  bbox_preds: List[Tensor], batch_gt_instances: InstanceList,
                  batch_img_metas: List[dict],
                  batch_gt_instances_ignore: OptInstanceList) -> DenseTargets:
    """Predictions and targets of all anchors of a head, levels
    concatenated (the head's own ``get_anchors`` and ``get_targets``)."""
    num_imgs = len(batch_img_metas)
    anchor_list, valid_flag_list = head.get_anchors(
        [s.shape[-2:] for s in cls_scores],
        batch_img_metas,
        device=cls_scores[0].device)
    (labels, label_weights, box_targets, box_weights,
     avg_factor) = head.get_targets(
         anchor_list,
         valid_flag_list,
         batch_gt_instances,
         batch_img_metas,
         batch_gt_instances_ignore,
         unmap_outputs=True)
    box_dim = box_targets[0].size(-1)
    return DenseTargets(
        scores=_levels_to_batch(cls_scores, num_imgs, head.cls_out_channels),
        preds=_levels_to_batch(bbox_preds, num_imgs, box_dim),
        anchors=torch.stack(
            [get_box_tensor(cat_boxes(anchors)) for anchors in anchor_list]),
        labels=torch.cat(labels, 1),
        label_weights=torch.cat(label_weights, 1),
        box_targets=torch.cat(box_targets, 1),
        box_weights=torch.cat(box_weights, 1),
        avg_factor=avg_factor)


def check_dense_head(cls: type) -> None:
    """Raise ``TypeError`` unless ``cls`` computes its loss per anchor as
    ``AnchorHead`` (or ``SSDHead``) does, which the adapter replaces."""
    own = {
        name: getattr(cls, name, None)
        for name in ('loss_by_feat_single', 'get_targets')
    }
    standard = {
        'loss_by_feat_single':
        (AnchorHead.loss_by_feat_single, MMDetSSDHead.loss_by_feat_single),
        'get_targets': (AnchorHead.get_targets, ),
    }
    bases = [
        b.__name__ for b in cls.__mro__[1:]
        if b is not OHEMDenseHeadMixin and b.__module__ != 'builtins'
    ]
    if not issubclass(cls, AnchorHead) or any(own[name] not in standard[name]
                                              for name in own):
        raise TypeError(
            f'OHEM cannot drive {bases[0] if bases else cls.__name__}: it '
            'needs an AnchorHead whose loss is a classification and a box '
            'loss per anchor (RetinaHead, SSDHead, AnchorHead); heads with '
            'their own targets or loss (a quality branch: ATSS, GFL, PAA; '
            'FSAF, FreeAnchor) and anchor-free heads (FCOS, ...) are not '
            'supported.')


def _levels_to_batch(maps: List[Tensor], num_imgs: int,
                     channels: int) -> Tensor:
    """Per-level maps Tensor[B, K * channels, H, W] as Tensor[B, A,
    channels], anchors in the order of the targets."""
    return torch.cat(
        [m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for m in maps],
        1)


def _per_anchor(loss: Tensor, shape: torch.Size) -> Tensor:
    """A loss with ``reduction='none'`` (Tensor[N] or Tensor[N, K]) as one
    value per anchor, Tensor[B, A]: summed over its last axis if any."""
    if loss.dim() == 2:
        loss = loss.sum(-1)
    return loss.view(shape)


@DET_MODELS.register_module()
class OHEMRetinaHead(OHEMDenseHeadMixin, RetinaHead):
    """``RetinaHead`` trained with OHEM (see :class:`OHEMDenseHeadMixin`).

    Its per-anchor ranking loss is the head's ``loss_cls`` (sigmoid: summed
    over the classes) plus its ``loss_bbox`` for positives. The Focal Loss
    paper's OHEM rows train with plain cross-entropy:
    ``loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True)``.
    """


@DET_MODELS.register_module()
class OHEMAnchorHead(OHEMDenseHeadMixin, AnchorHead):
    """A plain ``AnchorHead`` trained with OHEM (see
    :class:`OHEMDenseHeadMixin`)."""
