"""SSD head whose fixed 3:1 hard negative mining is replaced by OHEM."""
from mmohem.registry import DET_MODELS
from .ohem_dense_head import OHEMDenseHeadMixin
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
    normaliser, the number of positive anchors of the batch, but by at
    least ``num / num_per_pos`` per image (16 for ``num=64,
    num_per_pos=4``): an image without ground truth still keeps ``num``
    negatives, which upstream's 3:1 mining would not, and divided by one
    they would weigh 16 times more than a normal image's kept anchors.
    """
