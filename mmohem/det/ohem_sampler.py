"""OHEM sampler for mmdet RoI heads: one read-only forward, loss-NMS, top-B."""
import logging
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmohem.mining import (CapturableMiner, MiningResult, delta_affine,
                           delta_targets, example_losses)
from mmohem.registry import DET_TASK_UTILS
from mmohem.utils import (MiningStats, check_choice, check_range, read_only,
                          reject_unknown_options, signature_options)
from .mining_rule import BoxMiningRule, summarise

NMS_BOX_CHOICES = ('candidates', 'predicted')
# Options that only one kind of head uses: given for the other, an error.
ROI_ONLY = {
    'add_gt_as_proposals': True,
    'smooth_l1_beta': 1.0,
    'score_chunk': None
}
# Activation memory of one read-only forward when `score_chunk` is unset.
SCORE_BYTES = 256 * 2**20
DENSE_ONLY = {'nms_boxes': 'candidates'}
DENSE_HEADS = ("type='mmohem.OHEMRetinaHead' (RetinaHead), "
               "'mmohem.OHEMSSDHead' (SSDHead) or 'mmohem.OHEMAnchorHead' "
               '(AnchorHead)')


@DET_TASK_UTILS.register_module()
class OHEMSampler(CapturableMiner):
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
    ``DoubleHeadRoIHead`` and Mask R-CNN. mmohem's dense heads
    (:mod:`mmohem.det.ohem_dense_head`) compute their per-anchor losses
    themselves, declare ``ohem_dense_head = True`` and call :meth:`mine`
    instead of :meth:`sample`; they take the rule's options and
    ``nms_boxes``, RoI heads the rule's options and ``add_gt_as_proposals``,
    ``smooth_l1_beta`` and ``score_chunk`` (given for the other kind of
    head, each is an error).

    ``mmohem.OHEMVisHook`` draws what it mines: an armed sampler (see
    :mod:`mmohem.mining.capture`) stores the first image of
    :meth:`mine`'s first call of the iteration in ``ohem_capture``.

    Args:
        num (int): Examples kept per image (B/N in the paper).
        context (nn.Module): The head; mmdet passes it.
        num_per_pos, nms_thr, nms_per_label, loss, pos_fraction, neg_pos_ub:
            The mining rule, see
            :class:`~mmohem.det.mining_rule.BoxMiningRule`.
        nms_boxes (str, optional): Dense heads: the boxes the NMS compares,
            ``'candidates'`` (prior anchors, the default) or ``'predicted'``
            (the decoded box predictions).
        add_gt_as_proposals (bool, optional): RoI heads: add the ground
            truth to the candidates. Defaults to True.
        smooth_l1_beta (float, optional): RoI heads: transition point of the
            smooth-L1 term. Defaults to 1.0.
        score_chunk (int, optional): RoI heads: candidates scored per
            forward of the read-only pass, which bounds its activation
            memory. Defaults to as many as fit 256 MiB (every candidate of
            an FPN head in one forward; chunks of 167 for a C4 head).
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
                 nms_boxes: Optional[str] = None,
                 add_gt_as_proposals: Optional[bool] = None,
                 smooth_l1_beta: Optional[float] = None,
                 score_chunk: Optional[int] = None,
                 **unknown) -> None:
        owner = 'mmohem.OHEMSampler'
        reject_unknown_options(owner, unknown,
                               signature_options(OHEMSampler.__init__))
        _warn_merged_random_sampler(pos_fraction, neg_pos_ub)
        self.rule = BoxMiningRule(owner, num, num_per_pos, nms_thr,
                                  nms_per_label, loss, pos_fraction,
                                  -1 if neg_pos_ub is None else neg_pos_ub)
        self.context = context
        self.dense = getattr(context, 'ohem_dense_head', False)
        given = dict(
            nms_boxes=nms_boxes,
            add_gt_as_proposals=add_gt_as_proposals,
            smooth_l1_beta=smooth_l1_beta,
            score_chunk=score_chunk)
        own, other = (DENSE_ONLY, ROI_ONLY) if self.dense else (ROI_ONLY,
                                                                DENSE_ONLY)
        _reject_other_kind(owner, context, given, other)
        options = {k: own[k] if given[k] is None else given[k] for k in own}
        self.stage = None if self.dense else _check_roi_head(context)
        if self.dense:
            check_choice(owner, 'nms_boxes', options['nms_boxes'],
                         NMS_BOX_CHOICES)
            self.nms_boxes = options['nms_boxes']
        else:
            check_choice(owner, 'add_gt_as_proposals',
                         options['add_gt_as_proposals'], (True, False))
            check_range(
                owner,
                'smooth_l1_beta',
                options['smooth_l1_beta'],
                0,
                low_open=True)
            check_range(
                owner,
                'score_chunk',
                options['score_chunk'],
                low=1,
                integer=True,
                allow_none=True)
            self.add_gt_as_proposals = options['add_gt_as_proposals']
            self.smooth_l1_beta = options['smooth_l1_beta']
            self.score_chunk = options['score_chunk']
        self.stats = MiningStats(
            '' if self.stage is None else f's{self.stage}_', summarise)
        if not self.dense:
            self.bbox_head.register_forward_pre_hook(self._publish_stats)
        print_log(
            f'{owner} for {type(context).__name__}: {self!r}',
            logger='current')

    def __repr__(self) -> str:
        stage = '' if self.stage is None else f'stage={self.stage}, '
        if self.dense:
            own = f'nms_boxes={self.nms_boxes!r}'
        else:
            chunk = self.score_chunk or f'auto ({SCORE_BYTES >> 20} MiB)'
            own = (f'add_gt_as_proposals={self.add_gt_as_proposals}, '
                   f'smooth_l1_beta={self.smooth_l1_beta}, '
                   f'score_chunk={chunk}')
        return f'{type(self).__name__}({stage}{self.rule!r}, {own})'

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
        device and published once per iteration, when the training forward
        of the bbox head starts.

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
        if self.dense:
            raise TypeError(f'{type(self.context).__name__} mines through '
                            'OHEMSampler.mine(); sample() serves RoI heads.')
        if feats is None:
            raise ValueError(
                'mmohem.OHEMSampler.sample needs `feats`, the image features '
                'that mmdet RoI heads pass to their sampler.')
        check_gt_labels(gt_instances.labels, self.bbox_head.num_classes)
        priors, gt_flags = self._candidates(assign_result, pred_instances,
                                            gt_instances)
        gt_inds = assign_result.gt_inds
        is_pos = gt_inds > 0
        # The assigner labels every candidate without a class -1: its
        # remainder modulo num_classes + 1 is the background index.
        labels = assign_result.labels.remainder(self.bbox_head.num_classes + 1)
        # Boxes without extent (inverted, or zero width or height) are
        # scored, as large as RoIAlign takes them, and never kept.
        losses = self._example_losses(feats, _no_inversion(priors),
                                      get_box_tensor(gt_instances.bboxes),
                                      gt_inds, labels, is_pos)
        valid = (gt_inds >= 0) & (priors[:, 2:] > priors[:, :2]).all(1)
        kept = self.mine(losses[None], valid[None], is_pos[None], priors[None],
                         labels[None]).kept[0]
        kept_pos = kept & is_pos
        return SamplingResult(
            pos_inds=kept_pos.nonzero().squeeze(1),
            neg_inds=(kept ^ kept_pos).nonzero().squeeze(1),
            priors=priors,
            gt_bboxes=gt_instances.bboxes,
            assign_result=assign_result,
            gt_flags=gt_flags)

    def mine(self, losses: Tensor, valid: Tensor, is_pos: Tensor,
             boxes: Tensor, labels: Tensor) -> MiningResult:
        """Mine hard examples from per-candidate losses, per image.

        Applies the mining rule (budget, loss-NMS, quota) and records the
        mining statistics. :meth:`sample` calls it for one image; dense
        heads call it for the whole batch.

        Arguments and result: those of
        :meth:`~mmohem.det.mining_rule.BoxMiningRule.mine`.
        """
        result = self.rule.mine(losses, valid, is_pos, boxes, labels)
        self.stats.add(self.rule.statistics(result, losses, is_pos))
        if self.dense:
            self.stats.publish()
        if self.ohem_capture is not None:
            self.ohem_capture.store_boxes(result, boxes, is_pos)
        return result

    def _candidates(self, assign_result: AssignResult,
                    pred_instances: InstanceData,
                    gt_instances: InstanceData) -> Tuple[Tensor, Tensor]:
        """All candidates of the image: ground truth (optional) + priors."""
        priors = get_box_tensor(pred_instances.priors)
        gt_flags = priors.new_zeros((priors.size(0), ), dtype=torch.uint8)
        gt_bboxes = get_box_tensor(gt_instances.bboxes)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = cat_boxes([gt_bboxes.to(priors), priors], dim=0)
            assign_result.add_gt_(gt_instances.labels)
            gt_flags = torch.cat([gt_flags.new_ones(len(gt_bboxes)), gt_flags])
        return priors, gt_flags

    def _example_losses(self, feats: List[Tensor], priors: Tensor,
                        gt_bboxes: Tensor, gt_inds: Tensor, labels: Tensor,
                        is_pos: Tensor) -> Tensor:
        """Per-candidate loss from one read-only pass: Tensor[N]."""
        # RoIs of image 0: the features are this image's alone.
        out = self._score(feats, F.pad(priors, (1, 0)))
        if self.rule.loss == 'cls' or len(gt_bboxes) == 0:
            return example_losses(out['cls_score'], labels)
        # Row k of the padded table is ground truth k - 1 (1-based
        # gt_inds); 0 (negatives) and -1 (ignored) read rows whose targets
        # are never used.
        matched_gt = F.pad(gt_bboxes, (0, 0, 1, 0))[gt_inds]
        pred, target = self._box_terms(out['bbox_pred'], priors, matched_gt,
                                       labels)
        return example_losses(out['cls_score'], labels, pred, target, is_pos,
                              self.smooth_l1_beta)

    def _score(self, feats: List[Tensor], rois: Tensor) -> Dict[str, Tensor]:
        """Read-only forward of the head over ``rois`` (Tensor[N, 5]), in
        as few forwards as :meth:`_chunk` allows: ``cls_score`` and
        ``bbox_pred``."""
        outs = []
        with read_only(self.context):
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
        extractor = self.context.bbox_roi_extractor
        if self.stage is not None:
            extractor = extractor[self.stage]
        size = extractor.roi_layers[0].output_size
        pixels = size[0] * size[1] if isinstance(size, tuple) else size**2
        return max(1, SCORE_BYTES // (2 * 4 * extractor.out_channels * pixels))

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

    def _publish_stats(self, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook of the bbox head: its training forward follows
        the sampling of every image, so the iteration's statistics are
        complete (the read-only passes run without gradient)."""
        if torch.is_grad_enabled():
            self.stats.publish()


def check_gt_labels(labels: Tensor, num_classes: int) -> None:
    """Raise when a ground-truth label is outside ``[0, num_classes)``.

    Args:
        labels (Tensor[K]): ``gt_instances.labels`` of one or more images.
        num_classes (int): The head's number of classes.
    """
    if not labels.numel():
        return
    low, high = torch.stack(labels.aminmax()).tolist()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f'OHEM: `gt_instances.labels` must lie in [0, {num_classes - 1}] '
            f'(the head has num_classes={num_classes}); got values from '
            f'{low} to {high}.')


def _reject_other_kind(owner: str, context: nn.Module, given: dict,
                       other: dict) -> None:
    """Raise when an option of the other kind of head was given."""
    wrong = [name for name in other if given[name] is not None]
    if wrong:
        kind = 'a dense head' if getattr(context, 'ohem_dense_head',
                                         False) else 'a RoI head'
        raise TypeError(
            f'{owner}: {", ".join(f"`{w}`" for w in wrong)} is not used for '
            f'{type(context).__name__} ({kind}); remove it. Dense heads take '
            f'{", ".join(DENSE_ONLY)}, RoI heads {", ".join(ROI_ONLY)}, '
            'besides the mining rule\'s options.')


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


def _no_inversion(boxes: Tensor) -> Tensor:
    """``boxes`` (Tensor[N, 4]) with ``x2, y2`` raised to ``x1, y1`` where
    they lie below (RoIAlign refuses a negative width or height)."""
    return torch.cat([boxes[:, :2], boxes[:, 2:].maximum(boxes[:, :2])], 1)


def _warn_merged_random_sampler(pos_fraction: Optional[float],
                                neg_pos_ub: Optional[float]) -> None:
    """Warn when the options are those of the base config's RandomSampler
    (``pos_fraction=0.25, neg_pos_ub=-1``): mmengine merged them into the
    sampler dict, which then trains with a 25% positive quota instead of
    the paper's rule."""
    if pos_fraction == 0.25 and neg_pos_ub == -1:
        print_log(
            'mmohem.OHEMSampler got pos_fraction=0.25, neg_pos_ub=-1: the '
            "options of the base config's RandomSampler, merged into the "
            'sampler dict because it lacks `_delete_=True`. OHEM now keeps '
            'a 25% positive quota, not the paper\'s rule (positives and '
            'negatives ranked together). Add `_delete_=True` to the sampler '
            'dict; if the quota is meant, leave out `neg_pos_ub=-1` (the '
            'default) to silence this warning.',
            logger='current',
            level=logging.WARNING)
