"""SSD head whose fixed 3:1 hard negative mining is replaced by OHEM."""
from typing import Tuple

from torch import Tensor

from mmohem.mining import box_losses, cls_losses
from mmohem.registry import DET_MODELS
from .ohem_dense_head import DenseTargets, OHEMDenseHeadMixin
from .ssd_head import SSDHead


@DET_MODELS.register_module()
class OHEMSSDHead(OHEMDenseHeadMixin, SSDHead):
    """``SSDHead`` trained with Online Hard Example Mining.

    The dense adapter of :class:`~mmohem.det.ohem_dense_head.
    OHEMDenseHeadMixin` over :class:`mmohem.det.SSDHead` (mmdet's, able to
    evaluate under mmdet 3.3). Takes every ``SSDHead`` argument unchanged;
    ``train_cfg.sampler`` must be ``dict(type='mmohem.OHEMSampler', ...)``
    and carries the OHEM settings (``train_cfg.neg_pos_ratio`` is not
    used). SSD has no loss modules: the per-anchor losses are its own,
    softmax cross-entropy and, for positives, smooth-L1 with
    ``train_cfg.smoothl1_beta``. Both are divided by ``SSDHead``'s
    normaliser, the number of positive anchors of the batch (at least one
    per image).
    """

    def anchor_losses(self, targets: DenseTargets) -> Tuple[Tensor, Tensor]:
        """Per-anchor softmax cross-entropy (times the label weight) and
        smooth-L1 box loss of positives, Tensor[B, A] each, float32."""
        labels = targets.labels
        is_pos = (labels >= 0) & (labels < self.num_classes)
        preds = targets.preds
        if self.reg_decoded_bbox:
            preds = self.bbox_coder.decode(targets.anchors, preds)
        loss_cls = cls_losses(targets.scores, labels) * targets.label_weights
        loss_bbox = box_losses(preds, targets.box_targets, is_pos,
                               self.train_cfg['smoothl1_beta'])
        return loss_cls, loss_bbox
