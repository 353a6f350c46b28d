"""mmdet's ``SSDHead``, able to predict under mmdet 3.3."""
from mmdet.models.dense_heads import SSDHead as MMDetSSDHead

from mmohem.registry import DET_MODELS


@DET_MODELS.register_module()
class SSDHead(MMDetSSDHead):
    """``mmdet.models.SSDHead`` with one attribute added: ``loss_cls = None``.

    mmdet 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads
    ``self.loss_cls``, which ``SSDHead`` never sets, so every SSD
    evaluation fails with ``AttributeError: 'SSDHead' object has no
    attribute 'loss_cls'`` (open-mmlab/mmdetection#11780, fix proposed in
    #11524). ``None`` makes that check fall through to the softmax, as in
    mmdet 3.0. Training and prediction are otherwise upstream's; use
    ``type='mmohem.SSDHead'`` for an SSD baseline that must evaluate.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loss_cls = None
