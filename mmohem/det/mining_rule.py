"""The detection mining rule: box OHEM's options, validated once, and the
one call that applies them.

Every detection miner (the RoI sampler, each dense head adapter) holds a
:class:`BoxMiningRule` and mines through :meth:`BoxMiningRule.mine`; the math
is :func:`mmohem.mining.mine_hard_examples`.
"""
from typing import Dict, Optional

from torch import Tensor

from mmohem.mining import MiningResult, mine_hard_examples
from mmohem.utils import check_choice, check_range

LOSS_CHOICES = ('cls', 'cls+bbox')


class BoxMiningRule:
    """What to keep of a batch of scored candidates.

    Args:
        owner (str): Names the miner in error messages.
        num (int): Examples kept per image; with ``num_per_pos``, the
            least kept per image.
        num_per_pos (float, optional): Keep
            ``max(num, ceil(num_per_pos * positives))`` per image, so the
            budget follows the positives while images without positives
            still yield ``num`` hard negatives. ``None`` keeps ``num``.
        nms_thr (float, optional): IoU threshold in (0, 1] of the loss-based
            NMS; ``None`` turns it off.
        nms_per_label (bool): NMS separately per assigned label (background
            is a label), as the paper's code; ``False`` is class-agnostic.
        loss (str): What ranks the candidates: ``'cls+bbox'`` (the paper's)
            or ``'cls'``.
        pos_fraction (float, optional): ``None`` lets positives and
            negatives compete on loss alone; a float in (0, 1] reserves
            ``int(num * pos_fraction)`` places for positives.
        neg_pos_ub (float): With ``pos_fraction``, bound on negatives per
            positive; negative means none.
    """

    def __init__(self,
                 owner: str,
                 num: int,
                 num_per_pos: Optional[float] = None,
                 nms_thr: Optional[float] = 0.7,
                 nms_per_label: bool = True,
                 loss: str = 'cls+bbox',
                 pos_fraction: Optional[float] = None,
                 neg_pos_ub: float = -1) -> None:
        check_range(owner, 'num', num, low=1, integer=True)
        check_range(
            owner,
            'num_per_pos',
            num_per_pos,
            0,
            low_open=True,
            allow_none=True)
        check_range(
            owner, 'nms_thr', nms_thr, 0, 1, low_open=True, allow_none=True)
        check_choice(owner, 'nms_per_label', nms_per_label, (True, False))
        check_choice(owner, 'loss', loss, LOSS_CHOICES)
        check_range(
            owner,
            'pos_fraction',
            pos_fraction,
            0,
            1,
            low_open=True,
            allow_none=True)
        check_range(owner, 'neg_pos_ub', neg_pos_ub)
        self.num = int(num)
        self.num_per_pos = num_per_pos
        self.nms_thr = nms_thr
        self.nms_per_label = bool(nms_per_label)
        self.loss = loss
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub

    def ranking_losses(self,
                       cls_loss: Tensor,
                       box_loss: Optional[Tensor] = None) -> Tensor:
        """What ranks the candidates: the detached classification loss,
        plus the box loss with ``loss='cls+bbox'``.

        Args:
            cls_loss (Tensor[B, N]): Per-candidate classification loss.
            box_loss (Tensor[B, N], optional): Per-candidate box loss
                (zero for negatives).

        Returns:
            Tensor[B, N]: Float32, without gradient.
        """
        losses = cls_loss.detach().float()
        if self.loss == 'cls+bbox' and box_loss is not None:
            losses = losses + box_loss.detach().float()
        return losses

    def mine(self, losses: Tensor, valid: Tensor, is_pos: Tensor,
             boxes: Tensor, labels: Tensor) -> MiningResult:
        """Mine the hard examples of each image of a batch.

        Args:
            losses (Tensor[B, N]): Per-candidate loss (no grad needed).
            valid (Tensor[B, N]): Bool mask of candidates that may be kept.
            is_pos (Tensor[B, N]): Bool mask of positives.
            boxes (Tensor[B, N, 4]): Boxes compared by the NMS.
            labels (Tensor[B, N]): Target labels, background included.

        Returns:
            MiningResult: Kept, examined and suppressed masks.
        """
        num = self.num
        if self.num_per_pos is not None:
            num = (self.num_per_pos *
                   (valid & is_pos).sum(1)).ceil().long().clamp(min=self.num)
        return mine_hard_examples(losses, valid, is_pos, boxes, num,
                                  self.nms_thr,
                                  labels if self.nms_per_label else None,
                                  self.pos_fraction, self.neg_pos_ub)

    @staticmethod
    def statistics(result: MiningResult, losses: Tensor,
                   is_pos: Tensor) -> Dict[str, Tensor]:
        """A call's statistics, on the device: kept positives and negatives
        per image, the share of images that keep no positive (they train no
        box regression), the share of examined candidates the loss-NMS
        removed, and the mean loss of the kept and of the examined
        candidates."""
        kept, examined = result.kept, result.examined
        images = kept.size(0)
        kept_pos = kept & is_pos
        return dict(
            num_pos=kept_pos.sum() / images,
            num_neg=(kept & ~is_pos).sum() / images,
            no_pos_images=(~kept_pos.any(1)).float().mean(),
            nms_suppressed=result.suppressed.sum() /
            examined.sum().clamp(min=1),
            loss_kept=losses.where(kept, 0).sum() / kept.sum().clamp(min=1),
            loss_all=losses.where(examined, 0).sum() /
            examined.sum().clamp(min=1))
