"""OHEM for anchor-based dense heads: one adapter for every ``AnchorHead``
whose loss is per anchor (RetinaNet, SSD, a plain ``AnchorHead``).

The per-anchor losses are computed once, with the head's own loss modules
(``reduction_override='none'``): their detached sum ranks the anchors, the
originals carry the gradient. The mining rule of the head's
:class:`~mmohem.det.dense_miner.DenseBoxMiner` picks the kept anchors of
each image; anchors not kept contribute to no loss. Both
losses are divided by the head's own normaliser (the positive anchors of
the batch, at least one per image), so the upstream learning rate applies,
but by at least ``num / num_per_pos`` per image (``num`` without
``num_per_pos``): an image keeps ``num`` anchors however few positives it
has, and divided by one positive per image, a batch of background images
would weigh about that many times more than a normal one
(:func:`ohem_avg_factor`). An image
without ground truth contributes its ``num`` hardest negatives; degenerate
ground-truth boxes are skipped with a warning (:mod:`mmohem.det.gt_boxes`).
"""
import inspect
import math
from itertools import accumulate
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
from mmdet.models.dense_heads import AnchorHead, RetinaHead
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
from mmdet.models.losses import CrossEntropyLoss
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmdet.utils import InstanceList, OptConfigType, OptInstanceList
from mmengine.config import ConfigDict
from torch import Tensor, nn

from mmohem.mining import box_losses, cls_losses
from mmohem.registry import DET_MODELS
from .dense_miner import build_dense_miner
from .gt_boxes import degenerate_gt, drop_degenerate_gt
from .mining_rule import BoxMiningRule
from .ohem_sampler import check_gt_labels


class DenseTargets(NamedTuple):
    """Predictions and targets of every anchor of a batch, batch-first.

    Attributes:
        scores (Tensor[B, A, C']): Class scores (``cls_out_channels``).
        preds (Tensor[B, A, D]): Box predictions (encoded).
        anchors (Tensor[B, A, 4]): Prior anchors.
        labels (Tensor[B, A]): Target labels, ``num_classes`` for background.
        is_pos (Tensor[B, A]): Bool, the positive anchors.
        label_weights (Tensor[B, A]): 0 for anchors to ignore.
        box_targets (Tensor[B, A, D]): Box regression targets.
        box_weights (Tensor[B, A, D]): 0 for anchors without a box target.
        avg_factor (float): The head's loss normaliser.
    """
    scores: Tensor
    preds: Tensor
    anchors: Tensor
    labels: Tensor
    is_pos: Tensor
    label_weights: Tensor
    box_targets: Tensor
    box_weights: Tensor
    avg_factor: float


class OHEMDenseHeadMixin:
    """Loss of an ``AnchorHead`` subclass trained with OHEM.

    Put it first among the bases (``class H(OHEMDenseHeadMixin,
    RetinaHead)``); every argument of the head is unchanged and
    ``train_cfg.sampler`` must be ``dict(type='mmohem.OHEMSampler', ...)``,
    which holds the mining options: the head builds its
    :class:`~mmohem.det.dense_miner.DenseBoxMiner` from it
    (``ohem_sampler``) and samples nothing else. Heads whose loss is not
    per anchor (their own ``loss_by_feat_single`` or ``get_targets``:
    ATSS, GFL, PAA, FSAF, FreeAnchor, ...) are refused by name;
    anchor-free heads (FCOS, ...) are no ``AnchorHead``.
    """

    ohem_dense_head = True

    def __init__(self,
                 *args,
                 train_cfg: OptConfigType = None,
                 **kwargs) -> None:
        check_dense_head(type(self))
        sampler = None
        if train_cfg is not None:
            train_cfg = ConfigDict(train_cfg)
            sampler = train_cfg.pop('sampler', None)
        # mmdet's head builds a PseudoSampler: the miner replaces sampling.
        super().__init__(*args, train_cfg=train_cfg, **kwargs)
        check_box_loss(getattr(self, 'loss_bbox', None), type(self).__name__)
        if train_cfg is not None:
            self.ohem_sampler = build_dense_miner(sampler, self)

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
        batch_gt_instances = usable_gt(self, batch_gt_instances,
                                       batch_img_metas)
        targets = dense_targets(self, cls_scores, bbox_preds,
                                batch_gt_instances, batch_img_metas,
                                batch_gt_instances_ignore)
        decoded = decoded_boxes(self, targets,
                                self.ohem_sampler.nms_boxes == 'predicted')
        loss_cls, loss_bbox = anchor_losses(self, targets, decoded)
        kept = self._mine(loss_cls, loss_bbox, targets, decoded)
        weight = kept / ohem_avg_factor(
            targets.avg_factor, self.ohem_sampler.rule, len(batch_img_metas))
        losses = torch.stack([loss_cls, loss_bbox]).mul(weight).sum(-1)
        return dict(loss_cls=list(losses[0]), loss_bbox=list(losses[1]))

    def _mine(self, loss_cls: Tensor, loss_bbox: Tensor, targets: DenseTargets,
              decoded: Optional[Tensor]) -> Tensor:
        """Kept mask, Tensor[B, A], from the detached per-anchor losses;
        the NMS compares the anchors or the decoded predictions."""
        sampler = self.ohem_sampler
        boxes = targets.anchors
        if sampler.nms_boxes == 'predicted':
            boxes = decoded.detach()
        result, _ = sampler.mine(
            sampler.rule.ranking_losses(loss_cls, loss_bbox),
            targets.label_weights > 0, targets.is_pos, boxes, targets.labels)
        return result.kept


def ohem_avg_factor(avg_factor: float, rule: BoxMiningRule,
                    num_imgs: int) -> float:
    """The loss normaliser of a mined batch.

    The head's own, its positive anchors (at least one per image), but at
    least ``num / num_per_pos`` per image, or ``num`` without
    ``num_per_pos``: the kept anchors of an image over the anchors the rule
    keeps per positive. An image keeps ``num`` anchors however few
    positives it has; divided by its positives alone, a batch of background
    images (no positive: divided by one per image) would weigh ``num``
    times more per kept anchor than a normal batch. An image with enough
    positives (``num_per_pos * positives >= num``, or ``positives >= num``)
    keeps the head's normaliser, and the upstream learning rate.

    Args:
        avg_factor (float): The head's normaliser (``get_targets``').
        rule (BoxMiningRule): The mining rule.
        num_imgs (int): Images in the batch.

    Returns:
        float: The normaliser.
    """
    return max(
        float(avg_factor), num_imgs * rule.num / (rule.num_per_pos or 1))


def usable_gt(head: AnchorHead, batch_gt_instances: InstanceList,
              batch_img_metas: List[dict]) -> InstanceList:
    """The ground truth of a batch, labels checked, degenerate boxes
    skipped with a warning; one host read (none without ground truth).

    Raises:
        ValueError: A label outside ``[0, num_classes)``.
    """
    if not sum(len(gt) for gt in batch_gt_instances):
        return batch_gt_instances
    labels = torch.cat([gt.labels for gt in batch_gt_instances])
    boxes = torch.cat([get_box_tensor(gt.bboxes) for gt in batch_gt_instances])
    sides = (boxes[:, 2:] - boxes[:, :2]).float()
    low, high, shortest, longest = torch.stack(
        [*labels.float().aminmax(), *sides.aminmax()]).tolist()
    if low < 0 or high >= head.num_classes:
        check_gt_labels(labels, head.num_classes)
    if not (shortest > 0 and longest < math.inf):
        return drop_degenerate_gt(batch_gt_instances, batch_img_metas,
                                  degenerate_gt(boxes),
                                  f'mmohem.{type(head).__name__}')
    return batch_gt_instances


def decoded_boxes(head: AnchorHead, targets: DenseTargets,
                  for_nms: bool) -> Optional[Tensor]:
    """The box predictions decoded (the head predicts deltas either way).

    Args:
        head (AnchorHead): The head.
        targets (DenseTargets): The batch's predictions and targets.
        for_nms (bool): Whether the loss-NMS compares predicted boxes.

    Returns:
        Tensor[B, A, 4] | None: With ``reg_decoded_bbox``, the decoded
        boxes the box loss compares (with gradient); else, for the NMS
        only, decoded without gradient; ``None`` when neither needs them.
    """
    if not (head.reg_decoded_bbox or for_nms):
        return None
    preds = targets.preds if head.reg_decoded_bbox else targets.preds.detach()
    boxes = head.bbox_coder.decode(
        targets.anchors.reshape(-1, 4), preds.reshape(-1, preds.size(-1)))
    return get_box_tensor(boxes).view(*preds.shape[:2], -1)


def anchor_losses(head: AnchorHead,
                  targets: DenseTargets,
                  decoded: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Per-anchor classification and box losses of a head, in float32.

    ``SSDHead`` has no loss modules: its losses are softmax cross-entropy
    (times the label weight) and, for positives, smooth-L1 with
    ``train_cfg.smoothl1_beta``. Other heads use their own ``loss_cls`` and
    ``loss_bbox`` with ``reduction_override='none'``; a sigmoid
    classifier's loss is summed over the classes. The box loss is called
    without weights and weighted here, per coordinate (per box for a loss
    with one value per box, such as GIoU), as mmdet's losses weight it: it
    is one value per anchor even when no anchor has a box target, where
    mmdet's box losses return one scalar.

    Args:
        head (AnchorHead): The head (with or without OHEM).
        targets (DenseTargets): The batch's predictions and targets.
        decoded (Tensor[B, A, 4], optional): The decoded predictions, which
            the box loss compares with ``reg_decoded_bbox``.

    Returns:
        tuple[Tensor[B, A], Tensor[B, A]]: Classification and box loss of
        each anchor; the box loss is 0 without a box target.
    """
    labels = targets.labels
    preds = decoded if head.reg_decoded_bbox else targets.preds
    if isinstance(head, MMDetSSDHead):
        return (cls_losses(targets.scores, labels) * targets.label_weights,
                box_losses(preds, targets.box_targets, targets.box_weights,
                           head.train_cfg['smoothl1_beta']))
    loss_cls = head.loss_cls(
        targets.scores.flatten(0, 1).float(),
        *_cls_targets(head, labels.flatten(), targets.label_weights.flatten()),
        reduction_override='none')
    loss_bbox = head.loss_bbox(
        preds.flatten(0, 1).float(),
        targets.box_targets.flatten(0, 1).float(),
        reduction_override='none')
    box_rows = _anchor_rows(loss_bbox, labels.shape, head.loss_bbox)
    weights = targets.box_weights
    if box_rows.size(-1) == 1:
        weights = weights.mean(-1, keepdim=True)
    return (_anchor_rows(loss_cls, labels.shape,
                         head.loss_cls).sum(-1), (box_rows * weights).sum(-1))


def dense_targets(head: AnchorHead, cls_scores: List[Tensor],
                  bbox_preds: List[Tensor], batch_gt_instances: InstanceList,
                  batch_img_metas: List[dict],
                  batch_gt_instances_ignore: OptInstanceList) -> DenseTargets:
    """Predictions and targets of all anchors of a head, levels
    concatenated (the head's own ``get_anchors`` and ``get_targets``)."""
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
    labels = join_levels(labels)
    return DenseTargets(
        scores=levels_to_batch(cls_scores, head.cls_out_channels),
        preds=levels_to_batch(bbox_preds, head.bbox_coder.encode_size),
        anchors=batch_anchors(anchor_list),
        labels=labels,
        is_pos=labels < head.num_classes,
        label_weights=join_levels(label_weights),
        box_targets=join_levels(box_targets),
        box_weights=join_levels(box_weights),
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


def check_box_loss(loss: Optional[nn.Module], head: str) -> None:
    """Raise ``TypeError`` when the box loss cannot give one value per
    anchor from predictions and targets alone: its ``forward`` needs more
    (GHM-R's label weights, for one).

    Args:
        loss (nn.Module, optional): The head's ``loss_bbox``.
        head (str): The head's class name, for the message.
    """
    if loss is None:
        return
    params = list(inspect.signature(loss.forward).parameters.values())[2:]
    needed = [
        p.name for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                               p.POSITIONAL_OR_KEYWORD)
    ]
    if needed:
        raise TypeError(
            f'mmohem.{head}: OHEM ranks anchors by a box loss of the '
            f'predictions and targets alone, but {type(loss).__name__} also '
            f'needs {", ".join(f"`{n}`" for n in needed)}; use a box loss '
            'such as L1Loss, SmoothL1Loss or GIoULoss.')


def levels_to_batch(maps: List[Tensor], channels: int) -> Tensor:
    """Per-level head outputs as one value row per anchor.

    Consecutive levels with as many anchors per location are joined before
    their one permuting copy (RetinaNet's five levels: two operations).

    Args:
        maps (list[Tensor]): Per level, Tensor[B, K_l * channels, H_l, W_l].
        channels (int): Values per anchor.

    Returns:
        Tensor[B, A, channels]: Anchors in mmdet's order: level, y, x,
        anchor of the location.
    """
    runs: List[List[Tensor]] = []
    for level in maps:
        if runs and runs[-1][0].size(1) == level.size(1):
            runs[-1].append(level)
        else:
            runs.append([level])
    parts = [_run_to_batch(run, channels) for run in runs]
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def join_levels(levels: List[Tensor]) -> Tensor:
    """Per-level targets Tensor[B, A_l, ...] as Tensor[B, A, ...].

    mmdet's ``images_to_levels`` slices the levels out of one batch tensor:
    when they are its consecutive slices, that tensor is returned (no
    copy); otherwise their concatenation.
    """
    base = levels[0]._base
    sizes = [level.size(1) for level in levels]
    if base is not None and base.dim() > 1 and base.size(1) == sum(sizes):
        starts = accumulate([base.storage_offset()] +
                            [size * base.stride(1) for size in sizes[:-1]])
        if all(level._base is base and level.storage_offset() == start
               and level.stride() == base.stride()
               for level, start in zip(levels, starts)):
            return base
    return torch.cat(levels, 1)


def batch_anchors(anchor_list: List[List[Tensor]]) -> Tensor:
    """The anchors of each image, Tensor[B, A, 4]; ``AnchorHead`` gives
    every image the same list, concatenated once and expanded (a view)."""
    first = anchor_list[0]
    if all(anchors is first for anchors in anchor_list):
        return get_box_tensor(cat_boxes(first)).expand(
            len(anchor_list), -1, -1)
    return torch.stack(
        [get_box_tensor(cat_boxes(anchors)) for anchors in anchor_list])


def _run_to_batch(run: List[Tensor], channels: int) -> Tensor:
    """Levels of equal anchors per location, Tensor[B, K * channels, H_l,
    W_l] each, as Tensor[B, A_run, channels]: one concatenation of their
    flattened maps (a view for one level), one permuting copy."""
    flat = [level.flatten(2) for level in run]
    joined = flat[0] if len(flat) == 1 else torch.cat(flat, 2)
    num_imgs, width, locations = joined.shape
    return joined.view(num_imgs, width // channels, channels,
                       locations).permute(0, 3, 1, 2).contiguous().view(
                           num_imgs, -1, channels)


def _cls_targets(head: AnchorHead, labels: Tensor,
                 weights: Tensor) -> Tuple[Tensor, Tensor]:
    """Targets and weights for the head's ``loss_cls``: the labels,
    Tensor[N], and their weights, or, for mmdet's sigmoid
    ``CrossEntropyLoss``, the one-hot labels, Tensor[N, C], and the weights
    as Tensor[N, 1], which it takes as they are (from labels, it makes them
    with a host read)."""
    loss = head.loss_cls
    if type(loss) is CrossEntropyLoss and loss.use_sigmoid:
        classes = torch.arange(head.cls_out_channels, device=labels.device)
        return labels[:, None] == classes, weights[:, None]
    return labels, weights


def _anchor_rows(loss: Tensor, shape: torch.Size, module: nn.Module) -> Tensor:
    """A loss with ``reduction='none'``, Tensor[N] or Tensor[N, K] for N
    anchors, as Tensor[B, A, K] (K = 1 for Tensor[N])."""
    if loss.dim() not in (1, 2) or loss.size(0) != shape.numel():
        raise TypeError(
            f'OHEM needs one loss per anchor: {type(module).__name__} '
            f"returned shape {tuple(loss.shape)} with reduction='none' for "
            f'{shape.numel()} anchors.')
    return loss.view(*shape, -1)


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
