"""mmseg's own ``OhemCrossEntropy`` loss with the loss interface of a decode
head.

mmseg registers a loss named ``OhemCrossEntropy``, ported from PIDNet
(``thres``, ``min_kept`` for the whole batch, ``ignore_label``). Its
``forward(score, target)`` takes no ``weight`` and no ``ignore_index``,
which every ``BaseDecodeHead`` passes to its ``loss_decode``, so it serves
only mmseg's PIDNet head. :class:`MMSegOhemCrossEntropy` wraps it for any
decode head: mmseg computes the loss, the wrapper passes the head's ignore
index on and refuses a pixel weight (a pixel sampler's), which mmseg's loss
would drop.
"""
from typing import List, Optional, Union

from mmseg.models.losses import OhemCrossEntropy
from torch import Tensor, nn

from mmohem.registry import SEG_MODELS

NAME = 'mmohem.MMSegOhemCrossEntropy'


@SEG_MODELS.register_module()
class MMSegOhemCrossEntropy(nn.Module):
    """mmseg's ``OhemCrossEntropy`` in a decode head's ``loss_decode``.

    Args:
        thres (float): Probability threshold of a hard pixel, mmseg's.
        min_kept (int): Pixels kept at least in the whole batch (mmseg's
            rule: not per image).
        loss_weight (float): Weight of the loss.
        class_weight (list[float] | str, optional): Weight of each class.
        loss_name (str): Key of the loss in the head's loss dict.
    """

    def __init__(self,
                 thres: float = 0.7,
                 min_kept: int = 100000,
                 loss_weight: float = 1.0,
                 class_weight: Optional[Union[List[float], str]] = None,
                 loss_name: str = 'loss_ohem') -> None:
        super().__init__()
        self.loss = OhemCrossEntropy(
            thres=thres,
            min_kept=min_kept,
            loss_weight=loss_weight,
            class_weight=class_weight,
            loss_name=loss_name)

    @property
    def loss_name(self) -> str:
        """Key of the loss in the head's loss dict."""
        return self.loss.loss_name

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """mmseg's OHEM cross-entropy of a batch.

        Args:
            cls_score (Tensor[B, C, H, W]): Logits.
            label (Tensor[B, H, W]): Labels.
            weight (Tensor[B, H, W], optional): Must be ``None``.
            ignore_index (int): The decode head's ignore index.
            **kwargs: What else the decode head passes (unused).

        Returns:
            Tensor: The scalar loss.

        Raises:
            ValueError: When a per-pixel weight is given.
        """
        if weight is not None:
            raise ValueError(
                f'{NAME} cannot apply a per-pixel weight (mmseg\'s '
                'OhemCrossEntropy has none): remove the decode head\'s '
                '`sampler`, or use mmohem.OhemCrossEntropy.')
        self.loss.ignore_label = ignore_index
        return self.loss(cls_score, label)
