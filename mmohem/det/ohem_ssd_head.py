"""SSD head whose fixed 3:1 hard negative mining is replaced by OHEM."""
from typing import Dict, List, Tuple

import torch
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.utils import InstanceList, OptInstanceList
from torch import Tensor

from mmohem.mining import box_losses, cls_losses
from mmohem.registry import DET_MODELS
from .ohem_sampler import OHEMSampler, check_gt_labels
from .ssd_head import SSDHead


@DET_MODELS.register_module()
class OHEMSSDHead(SSDHead):
    """``SSDHead`` trained with Online Hard Example Mining.

    Subclasses mmdet's ``SSDHead`` through :class:`mmohem.det.SSDHead`, so
    it also evaluates under mmdet 3.3.

    Takes every ``SSDHead`` argument unchanged; ``train_cfg.sampler`` must
    be ``dict(type='mmohem.OHEMSampler', ...)`` and carries the OHEM
    settings (``train_cfg.neg_pos_ratio`` is not used). For all anchors of
    the batch at once:

    - per-anchor loss = softmax cross-entropy + smooth-L1 box loss of
      positives (``smoothl1_beta`` of ``train_cfg``), computed once: the
      detached copy ranks, the original carries the gradient;
    - loss-based NMS over the prior anchors (``nms_boxes='candidates'``) or
      the decoded predictions (``'predicted'``), per image and label;
    - the top ``num`` per image are kept (``num_per_pos`` makes it a
      multiple of the positives); positives and negatives compete on loss,
      and an image without ground truth still yields ``num`` negatives.

    Anchors not kept contribute to neither loss. Both losses are divided by
    ``SSDHead``'s own normaliser, the number of positive anchors of the
    batch (at least one per image), so the upstream learning rate applies.
    """

    ohem_dense_head = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.train_cfg is None:
            return
        if not isinstance(self.sampler, OHEMSampler):
            raise TypeError(
                'mmohem.OHEMSSDHead: `train_cfg.sampler` must be '
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
                Tensor[B, num_anchors * (num_classes + 1), H, W].
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
        check_gt_labels(torch.cat([gt.labels for gt in batch_gt_instances]),
                        self.num_classes)
        (scores, preds, anchors, labels, label_weights, targets,
         avg_factor) = self._flat_targets(cls_scores, bbox_preds,
                                          batch_gt_instances,
                                          batch_img_metas,
                                          batch_gt_instances_ignore)
        is_pos = (labels >= 0) & (labels < self.num_classes)
        if self.reg_decoded_bbox:
            preds = self.bbox_coder.decode(anchors, preds)
        loss_cls = cls_losses(scores, labels) * label_weights
        loss_bbox = box_losses(preds, targets, is_pos,
                               self.train_cfg['smoothl1_beta'])
        kept = self._mine(loss_cls, loss_bbox, label_weights > 0, is_pos,
                          anchors, preds, labels)
        return dict(
            loss_cls=list((loss_cls * kept).sum(1) / avg_factor),
            loss_bbox=list((loss_bbox * kept).sum(1) / avg_factor))

    def _mine(self, loss_cls: Tensor, loss_bbox: Tensor, valid: Tensor,
              is_pos: Tensor, anchors: Tensor, preds: Tensor,
              labels: Tensor) -> Tensor:
        """Kept mask, Tensor[B, A], from the detached per-anchor losses."""
        sampler = self.ohem_sampler
        losses = loss_cls.detach()
        if sampler.loss == 'cls+bbox':
            losses = losses + loss_bbox.detach()
        boxes = anchors
        if sampler.nms_boxes == 'predicted':
            boxes = preds.detach() if self.reg_decoded_bbox else \
                self.bbox_coder.decode(anchors, preds.detach())
        return sampler.mine(losses, valid, is_pos, boxes, labels).kept

    def _flat_targets(
        self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList, batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float]:
        """Predictions and targets of all anchors, batch-first.

        Returns:
            tuple: scores Tensor[B, A, C + 1], box predictions
            Tensor[B, A, 4], anchors Tensor[B, A, 4], labels Tensor[B, A],
            label weights Tensor[B, A], box targets Tensor[B, A, 4] and
            the loss normaliser.
        """
        num_imgs = len(batch_img_metas)
        anchor_list, valid_flag_list = self.get_anchors(
            [s.shape[-2:] for s in cls_scores], batch_img_metas,
            device=cls_scores[0].device)
        (labels, label_weights, bbox_targets, _,
         avg_factor) = self.get_targets(
             anchor_list, valid_flag_list, batch_gt_instances,
             batch_img_metas, batch_gt_instances_ignore, unmap_outputs=True)
        scores = torch.cat([
            s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels)
            for s in cls_scores
        ], 1)
        preds = torch.cat([
            p.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for p in bbox_preds
        ], 1)
        anchors = torch.stack([torch.cat(a) for a in anchor_list])
        return (scores, preds, anchors,
                torch.cat(labels, 1), torch.cat(label_weights, 1),
                torch.cat(bbox_targets, 1), avg_factor)
