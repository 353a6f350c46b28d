"""OHEM sampler for mmdet RoI heads: one read-only forward, loss-NMS, top-B."""
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.structures.bbox import get_box_tensor
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmohem.mining import delta_affine, delta_targets, example_losses
from mmohem.registry import DET_TASK_UTILS
from mmohem.utils import (check_choice, check_range, read_only,
                          reject_unknown_options, signature_options)
from .box_miner import OWNER, RULE_OPTIONS, BoxMiner
from .roi_features import read_only_features

# Activation memory of one read-only forward when `score_chunk` is unset.
SCORE_BYTES = 256 * 2**20
DENSE_HEADS = ("type='mmohem.OHEMRetinaHead' (RetinaHead), "
               "'mmohem.OHEMSSDHead' (SSDHead) or 'mmohem.OHEMAnchorHead' "
               '(AnchorHead)')


@DET_TASK_UTILS.register_module()
class OHEMSampler(BoxMiner):
    """Online Hard Example Mining (Shrivastava et al., CVPR 2016).

    For each image, every candidate (all proposals, plus the ground truth
    when ``add_gt_as_proposals``) is scored by one read-only forward of the
    RoI head given as ``context``: no gradient, no stored activations, the
    head in eval mode (no dropout, no BatchNorm statistics update), in as
    few forwards as a memory budget allows, and, under autocast, no cached
    weight casts (a cast made without gradient and reused by the training
    forward would leave the head's weights without gradients). The
    per-example loss is the classification cross-entropy plus, for
    positives, the smooth-L1 loss of the box regression. The
    :class:`~mmohem.det.mining_rule.BoxMiningRule` of the options (a
    loss-based NMS, the ``num`` candidates of highest loss) picks the kept
    ones. The result is an ordinary :class:`SamplingResult`, so bbox and
    mask heads train on it unchanged.

    Works with ``StandardRoIHead`` (FPN and C4 shared head),
    ``CascadeRoIHead`` (each stage scores with its own bbox head),
    ``DoubleHeadRoIHead`` and Mask R-CNN. mmohem's dense heads take the
    same ``dict(type='mmohem.OHEMSampler', ...)`` as ``train_cfg.sampler``
    and build a :class:`~mmohem.det.dense_miner.DenseBoxMiner` from it,
    which takes ``nms_boxes`` instead of this sampler's three own options.

    ``mmohem.OHEMVisHook`` draws what it mines: an armed sampler (see
    :mod:`mmohem.mining.capture`) stores the first image of
    :meth:`mine`'s first call of the iteration in ``ohem_capture``.

    Args:
        num (int): Examples kept per image (B/N in the paper).
        context (nn.Module): The RoI head; mmdet passes it.
        num_per_pos, nms_thr, nms_per_label, loss, pos_fraction, neg_pos_ub:
            The mining rule, see
            :class:`~mmohem.det.mining_rule.BoxMiningRule`.
        add_gt_as_proposals (bool): Add the ground truth to the candidates.
        smooth_l1_beta (float): Transition point of the smooth-L1 term.
        score_chunk (int, optional): Candidates scored per forward of the
            read-only pass, which bounds its activation memory. Defaults to
            as many as fit 256 MiB (every candidate of an FPN head in one
            forward; chunks of 167 for a C4 head).
    """

    def __init__(self,
                 num: int,
                 context: nn.Module,
                 num_per_pos: Optional[float] = None,
                 nms_thr: Optional[float] = 0.7,
                 nms_per_label: bool = True,
                 loss: str = 'cls+bbox',
                 pos_fraction: Optional[float] = None,
                 neg_pos_ub: Optional[float] = None,
                 add_gt_as_proposals: bool = True,
                 smooth_l1_beta: float = 1.0,
                 score_chunk: Optional[int] = None,
                 **unknown) -> None:
        _reject_dense_options(context, unknown)
        reject_unknown_options(OWNER, unknown,
                               signature_options(OHEMSampler.__init__))
        self.context = context
        self.stage = _check_roi_head(context)
        super().__init__('' if self.stage is None else f's{self.stage}_', num,
                         num_per_pos, nms_thr, nms_per_label, loss,
                         pos_fraction, neg_pos_ub)
        check_choice(OWNER, 'add_gt_as_proposals', add_gt_as_proposals,
                     (True, False))
        check_range(OWNER, 'smooth_l1_beta', smooth_l1_beta, 0, low_open=True)
        check_range(
            OWNER,
            'score_chunk',
            score_chunk,
            low=1,
            integer=True,
            allow_none=True)
        self.add_gt_as_proposals = add_gt_as_proposals
        self.smooth_l1_beta = smooth_l1_beta
        self.score_chunk = score_chunk
        self._label_ranges: List[Tensor] = []
        self.bbox_head.register_forward_pre_hook(self._publish_stats)
        print_log(
            f'{OWNER} for {type(context).__name__}: {self!r}',
            logger='current')

    def __repr__(self) -> str:
        stage = '' if self.stage is None else f'stage={self.stage}, '
        chunk = self.score_chunk or f'auto ({SCORE_BYTES >> 20} MiB)'
        return (f'{type(self).__name__}({stage}{self.rule!r}, '
                f'add_gt_as_proposals={self.add_gt_as_proposals}, '
                f'smooth_l1_beta={self.smooth_l1_beta}, score_chunk={chunk})')

    @property
    def bbox_head(self) -> nn.Module:
        """The bbox head that scores the candidates (this stage's)."""
        if self.stage is None:
            return self.context.bbox_head
        return self.context.bbox_head[self.stage]

    def sample(self,
               assign_result: AssignResult,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               feats: Optional[List[Tensor]] = None,
               **kwargs) -> SamplingResult:
        """Mine the hard examples of one image.

        Candidates with inverted boxes are never kept; zero-area ones are
        scored like any other. Statistics of each image are summed on the
        device and published once per iteration, with the check of its
        ground-truth labels, when the training forward of the bbox head
        starts (:meth:`publish`): no host read here besides mmdet's.

        Args:
            assign_result (AssignResult): Assignment of the candidates.
            pred_instances (InstanceData): ``priors`` (Tensor[N, 4]), the
                proposals of this image.
            gt_instances (InstanceData): ``bboxes`` (Tensor[K, 4]) and
                ``labels`` (Tensor[K]).
            feats (list[Tensor]): This image's feature maps, each
                ``Tensor[1, C, H, W]``, as the RoI heads pass them.

        Returns:
            SamplingResult: The kept positives and negatives.
        """
        if feats is None:
            raise ValueError(
                'mmohem.OHEMSampler.sample needs `feats`, the image features '
                'that mmdet RoI heads pass to their sampler.')
        if len(gt_instances.labels):
            self._label_ranges.extend(gt_instances.labels.aminmax())
        priors, gt_flags, gt_bboxes, gt_table = self._candidates(
            assign_result, pred_instances, gt_instances)
        gt_inds = assign_result.gt_inds
        is_pos = gt_inds > 0
        # The assigner labels every candidate without a class -1: its
        # remainder modulo num_classes + 1 is the background index (and a
        # wrong label, which publish() refuses, lands in range until then).
        labels = assign_result.labels.remainder(self.bbox_head.num_classes + 1)
        # Boxes without extent (inverted, or zero width or height) are
        # scored, as large as RoIAlign takes them, and never kept.
        losses = self._example_losses(feats, priors, gt_bboxes, gt_table,
                                      gt_inds, labels, is_pos)
        valid = (gt_inds >= 0) & (priors[:, 2:] > priors[:, :2]).all(1)
        result, kept_pos = self.mine(losses[None], valid[None], is_pos[None],
                                     priors[None], labels[None])
        return SamplingResult(
            pos_inds=kept_pos[0].nonzero().squeeze(1),
            neg_inds=(result.kept[0] ^ kept_pos[0]).nonzero().squeeze(1),
            priors=priors,
            gt_bboxes=gt_instances.bboxes,
            assign_result=assign_result,
            gt_flags=gt_flags)

    def _candidates(
        self, assign_result: AssignResult, pred_instances: InstanceData,
        gt_instances: InstanceData
    ) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        """All candidates of the image, the ground truth first (with
        ``add_gt_as_proposals``), then the proposals.

        Returns:
            tuple: The candidates (Tensor[N, 4]), their ``gt_flags``
            (Tensor[N], uint8, 1 for the ground truth), the ground truth
            (Tensor[K, 4]) and, when it leads the candidates, the table
            that one concatenation makes for both: a zero box followed by
            the candidates, whose row ``k`` is ground truth ``k`` (1-based,
            as ``gt_inds``); else ``None``.
        """
        priors = get_box_tensor(pred_instances.priors)
        gt_bboxes = get_box_tensor(gt_instances.bboxes).to(priors)
        if not (self.add_gt_as_proposals and len(gt_bboxes) > 0):
            return (priors, candidate_flags(0, len(priors),
                                            priors.device), gt_bboxes, None)
        table = torch.cat(
            [_zero_box(priors.device, priors.dtype), gt_bboxes, priors])
        assign_result.add_gt_(gt_instances.labels)
        flags = candidate_flags(len(gt_bboxes), len(table) - 1, priors.device)
        return table[1:], flags, gt_bboxes, table

    def _example_losses(self, feats: List[Tensor], priors: Tensor,
                        gt_bboxes: Tensor, gt_table: Optional[Tensor],
                        gt_inds: Tensor, labels: Tensor,
                        is_pos: Tensor) -> Tensor:
        """Per-candidate loss from one read-only pass: Tensor[N].

        ``gt_table`` is :meth:`_candidates`' table (made here when it is
        ``None``): negatives (0) and ignored candidates (-1) read rows
        whose targets are never used.
        """
        out = self._score(feats, _rois(priors))
        if self.rule.loss == 'cls' or len(gt_bboxes) == 0:
            return example_losses(out['cls_score'], labels)
        if gt_table is None:
            gt_table = torch.cat(
                [_zero_box(priors.device, priors.dtype), gt_bboxes])
        pred, target = self._box_terms(out['bbox_pred'], priors,
                                       gt_table[gt_inds], labels)
        return example_losses(out['cls_score'], labels, pred, target, is_pos,
                              self.smooth_l1_beta)

    def _score(self, feats: List[Tensor], rois: Tensor) -> Dict[str, Tensor]:
        """Read-only forward of the head over ``rois`` (Tensor[N, 5]), in
        as few forwards as :meth:`_chunk` allows: ``cls_score`` and
        ``bbox_pred``."""
        outs = []
        with read_only(self.context), read_only_features(
                self._extractor(), rois.device):
            for chunk in rois.split(self._chunk()):
                if self.stage is None:
                    out = self.context._bbox_forward(feats, chunk)
                else:
                    out = self.context._bbox_forward(self.stage, feats, chunk)
                outs.append((out['cls_score'], out['bbox_pred']))
        if len(outs) == 1:
            return dict(cls_score=outs[0][0], bbox_pred=outs[0][1])
        cls_scores, bbox_preds = zip(*outs)
        return dict(
            cls_score=torch.cat(cls_scores), bbox_pred=torch.cat(bbox_preds))

    def _chunk(self) -> int:
        """Candidates per read-only forward: ``score_chunk``, or as many as
        fit :data:`SCORE_BYTES` of activations (the RoI features and as
        much again for what the head computes from them, float32): 2674
        for an FPN head's 256 x 7 x 7 features, 167 for a C4 head's
        1024 x 14 x 14."""
        if self.score_chunk is not None:
            return int(self.score_chunk)
        extractor = self._extractor()
        size = extractor.roi_layers[0].output_size
        pixels = size[0] * size[1] if isinstance(size, tuple) else size**2
        return max(1, SCORE_BYTES // (2 * 4 * extractor.out_channels * pixels))

    def _extractor(self) -> nn.Module:
        """The RoI extractor of this stage."""
        extractor = self.context.bbox_roi_extractor
        if self.stage is None:
            return extractor
        return extractor[self.stage]

    def _box_terms(self, bbox_pred: Tensor, priors: Tensor, matched_gt: Tensor,
                   labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Regression of each candidate's target class and its target.

        Args:
            bbox_pred (Tensor[N, 4] | Tensor[N, 4 * C]): Head output.
            priors (Tensor[N, 4]): Candidate boxes.
            matched_gt (Tensor[N, 4]): Assigned ground truth (meaningful
                for positives only).
            labels (Tensor[N]): Target labels, background for negatives.

        Returns:
            tuple[Tensor[N, 4], Tensor[N, 4]]: Prediction and target, both
            encoded, or both decoded boxes when the head regresses decoded
            boxes (``reg_decoded_bbox``).
        """
        head = self.bbox_head
        pred = bbox_pred.view(bbox_pred.size(0), -1, 4)
        if pred.size(1) > 1:
            cls_idx = labels.clamp(max=pred.size(1) - 1)
            pred = pred.gather(1, cls_idx[:, None, None].expand(-1, 1, 4))
        pred = pred[:, 0]
        if head.reg_decoded_bbox:
            return head.bbox_coder.decode(priors, pred), matched_gt
        if type(head.bbox_coder) is DeltaXYWHBBoxCoder:
            return pred, delta_targets(priors, matched_gt,
                                       self._delta_affine(priors.device))
        return pred, head.bbox_coder.encode(priors, matched_gt)

    def _delta_affine(self, device: torch.device) -> Tensor:
        """The bbox coder's :func:`~mmohem.mining.delta_affine`, made once
        per device."""
        affine = getattr(self, '_affine', None)
        if affine is None or affine.device != device:
            coder = self.bbox_head.bbox_coder
            affine = delta_affine(coder.means, coder.stds, device)
            self._affine = affine
        return affine

    def publish(self) -> None:
        """Check the ground-truth labels sampled since the last call and
        publish the mining statistics: two host reads an iteration.

        Raises:
            ValueError: When a label lies outside ``[0, num_classes)``
                (the scoring saw it as another class, and the training
                loss would index out of range).
            FloatingPointError: See
                :func:`~mmohem.det.mining_rule.summarise`.
        """
        ranges, self._label_ranges = self._label_ranges, []
        if ranges:
            values = torch.stack(ranges).tolist()
            check_label_range(
                min(values[::2]), max(values[1::2]),
                self.bbox_head.num_classes)
        self.stats.publish()

    def _publish_stats(self, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook of the bbox head: its training forward follows
        the sampling of every image, so the iteration's labels and
        statistics are complete (the read-only passes run without
        gradient)."""
        if torch.is_grad_enabled():
            self.publish()


def check_gt_labels(labels: Tensor, num_classes: int) -> None:
    """Raise when a ground-truth label is outside ``[0, num_classes)``
    (one host read).

    Args:
        labels (Tensor[K]): ``gt_instances.labels`` of one or more images.
        num_classes (int): The head's number of classes.
    """
    if labels.numel():
        check_label_range(*torch.stack(labels.aminmax()).tolist(), num_classes)


def check_label_range(low: int, high: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``low`` and ``high``, the extremes of
    the ground-truth labels, lie in ``[0, num_classes)``."""
    if low < 0 or high >= num_classes:
        raise ValueError(
            f'OHEM: `gt_instances.labels` must lie in [0, {num_classes - 1}] '
            f'(the head has num_classes={num_classes}); got values from '
            f'{low} to {high}.')


def _reject_dense_options(context: nn.Module, unknown: dict) -> None:
    """Raise for a dense head's option (``nms_boxes``), or when the sampler
    was built for a dense head, which builds its own miner."""
    if getattr(context, 'ohem_dense_head', False):
        raise TypeError(
            f'{OWNER} was built for {type(context).__name__}, an mmohem '
            'dense head, which builds its own miner from '
            '`train_cfg.sampler` (mmohem.det.dense_miner).')
    if 'nms_boxes' in unknown:
        raise TypeError(
            f'{OWNER}: `nms_boxes` is not used for '
            f'{type(context).__name__} (a RoI head); remove it. RoI heads '
            f'take {", ".join(roi_sampler_options())}, besides the mining '
            "rule's options.")


def roi_sampler_options() -> List[str]:
    """The RoI sampler's options beyond the mining rule's."""
    return [
        name for name in signature_options(OHEMSampler.__init__)
        if name not in RULE_OPTIONS
    ]


def _check_roi_head(context: nn.Module) -> Optional[int]:
    """Check that ``context`` is a RoI head; return its stage if cascaded."""
    if not (hasattr(context, '_bbox_forward')
            and hasattr(context, 'bbox_head')):
        raise TypeError(
            'mmohem.OHEMSampler scores candidates with the bbox head of a '
            'RoI head (StandardRoIHead, CascadeRoIHead, DoubleHeadRoIHead, '
            f'...), but it was built for {type(context).__name__}, which '
            'has no bbox head. Use it as `train_cfg.rcnn.sampler`; for a '
            f'dense detector use the head {DENSE_HEADS} with this sampler '
            'as its `train_cfg.sampler` (anchor-free heads and heads with a '
            'quality branch, such as FCOS, ATSS or GFL, are not supported).')
    stage = getattr(context, 'current_stage', None) if hasattr(
        context, 'num_stages') else None
    head = context.bbox_head if stage is None else context.bbox_head[stage]
    if getattr(head, 'custom_cls_channels', False) or getattr(
            getattr(head, 'loss_cls', None), 'use_sigmoid', False):
        raise TypeError(
            f'mmohem.OHEMSampler ranks with softmax cross-entropy; '
            f'{type(head).__name__} uses a sigmoid or custom classifier, '
            'which it cannot drive.')
    return stage


def _rois(boxes: Tensor) -> Tensor:
    """RoIs Tensor[N, 5] of image 0 (the features passed are this image's
    alone) from ``boxes`` (Tensor[N, 4]), with ``x2, y2`` raised to
    ``x1, y1`` where they lie below (RoIAlign refuses a negative width or
    height): two operations."""
    rois = F.pad(boxes, (1, 0))
    torch.maximum(rois[:, 3:], rois[:, 1:3], out=rois[:, 3:])
    return rois


@lru_cache(maxsize=None)
def _zero_box(device: torch.device, dtype: torch.dtype) -> Tensor:
    """A zero box, Tensor[1, 4] (a constant, made once per device)."""
    return torch.zeros(1, 4, device=device, dtype=dtype)


#: Per device, a uint8 pattern of ones followed by zeros, and its ones.
_FLAG_PATTERNS: Dict[torch.device, Tuple[Tensor, int]] = {}


def candidate_flags(num_gts: int, num: int, device: torch.device) -> Tensor:
    """``gt_flags`` of ``num`` candidates of which the first ``num_gts`` are
    the ground truth: Tensor[num], uint8, a view of a pattern of ones and
    zeros made once per device (again when a call needs it longer); no
    operation otherwise. ``SamplingResult`` only reads it."""
    pattern, ones = _FLAG_PATTERNS.get(device, (None, 0))
    zeros = 0 if pattern is None else len(pattern) - ones
    if num_gts > ones or num - num_gts > zeros:
        ones, zeros = max(2 * num_gts, ones), max(2 * (num - num_gts), zeros)
        pattern = (torch.arange(ones + zeros, device=device) < ones).byte()
        _FLAG_PATTERNS[device] = (pattern, ones)
    return pattern[ones - num_gts:ones - num_gts + num]
