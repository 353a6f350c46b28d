"""The detection mining rule: box OHEM's options, validated once, and the
one call that applies them.

Every detection miner (the RoI sampler, each dense head adapter) holds a
:class:`BoxMiningRule` and mines through :meth:`BoxMiningRule.mine`; the math
is :func:`mmohem.mining.mine_hard_examples`.
"""
import logging
import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
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
        neg_pos_ub (float, optional): With ``pos_fraction``, bound on
            negatives per positive; negative or ``None`` means none.
    """

    def __init__(self,
                 owner: str,
                 num: int,
                 num_per_pos: Optional[float] = None,
                 nms_thr: Optional[float] = 0.7,
                 nms_per_label: bool = True,
                 loss: str = 'cls+bbox',
                 pos_fraction: Optional[float] = None,
                 neg_pos_ub: Optional[float] = None) -> None:
        _warn_merged_random_sampler(owner, pos_fraction, neg_pos_ub)
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
        check_range(owner, 'neg_pos_ub', neg_pos_ub, allow_none=True)
        self.num = int(num)
        self.num_per_pos = num_per_pos
        self.nms_thr = nms_thr
        self.nms_per_label = bool(nms_per_label)
        self.loss = loss
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = -1 if neg_pos_ub is None else neg_pos_ub

    def __repr__(self) -> str:
        return (f'BoxMiningRule(num={self.num}, num_per_pos='
                f'{self.num_per_pos}, nms_thr={self.nms_thr}, nms_per_label='
                f'{self.nms_per_label}, loss={self.loss!r}, pos_fraction='
                f'{self.pos_fraction}, neg_pos_ub={self.neg_pos_ub})')

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

        A non-finite loss is not looked for here (that would read the
        device): :func:`summarise` raises on the iteration's sums.

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
            num = [
                max(self.num, math.ceil(self.num_per_pos * positives))
                for positives in (valid & is_pos).sum(1).tolist()
            ]
        return mine_hard_examples(
            losses,
            valid,
            is_pos,
            boxes,
            num,
            self.nms_thr,
            labels if self.nms_per_label else None,
            self.pos_fraction,
            self.neg_pos_ub,
            check_finite=False)

    @staticmethod
    def statistics(result: MiningResult, losses: Tensor,
                   kept_pos: Tensor) -> Tensor:
        """A call's statistics as raw sums per image, on the device.

        Each row holds, for the kept positives, the kept, the suppressed
        and the examined candidates of one image, their count and loss
        sum (:data:`STAT_COLUMNS`); :func:`summarise` turns the rows of an
        iteration into the logged values.

        Args:
            result (MiningResult): The call's masks, each Tensor[B, N].
            losses (Tensor[B, N]): The ranking losses.
            kept_pos (Tensor[B, N]): Bool mask of the kept positives
                (``result.kept & is_pos``).

        Returns:
            Tensor[B, 8]: Float32 sums.
        """
        masks = torch.stack(
            [kept_pos, result.kept, result.suppressed, result.examined],
            1).float()
        examined_loss = losses.float().where(result.examined, 0.)
        columns = F.pad(examined_loss[..., None], (1, 0), value=1.)
        return (masks @ columns).flatten(1)


#: What each of the 8 sums of a row of :meth:`BoxMiningRule.statistics` is.
STAT_COLUMNS = ('kept_pos', 'kept_pos_loss', 'kept', 'kept_loss', 'suppressed',
                'suppressed_loss', 'examined', 'examined_loss')


def summarise(rows: List[List[float]]) -> Dict[str, float]:
    """The logged statistics of an iteration's rows (one per image): kept
    positives and negatives per image, the share of images that keep no
    positive (they train no box regression), the share of examined
    candidates the loss-NMS removed, and the mean loss of the kept and of
    the examined candidates, pooled over the images.

    Args:
        rows (list[list[float]]): Rows of :meth:`BoxMiningRule.statistics`.

    Returns:
        dict[str, float]: ``kept_pos``, ``kept_neg``, ``no_pos_images``,
        ``nms_suppressed``, ``loss_kept`` and ``loss_all``.

    Raises:
        FloatingPointError: When a mined candidate's loss was NaN or
            infinite (its image's examined loss sum is not finite).
    """
    sums = dict(zip(STAT_COLUMNS, map(sum, zip(*rows))))
    bad = sum(not math.isfinite(row[-1]) for row in rows)
    if bad:
        raise FloatingPointError(
            f'OHEM: {bad} image(s) of this iteration have candidates with a '
            'non-finite per-example loss (the head produced NaN/inf scores '
            'or box deltas); refusing to train on them.')
    images = len(rows)
    examined = max(sums['examined'], 1.)
    return dict(
        kept_pos=sums['kept_pos'] / images,
        kept_neg=(sums['kept'] - sums['kept_pos']) / images,
        no_pos_images=sum(row[0] == 0 for row in rows) / images,
        nms_suppressed=sums['suppressed'] / examined,
        loss_kept=sums['kept_loss'] / max(sums['kept'], 1.),
        loss_all=sums['examined_loss'] / examined)


def _warn_merged_random_sampler(owner: str, pos_fraction: Optional[float],
                                neg_pos_ub: Optional[float]) -> None:
    """Warn when the options are those of the base config's RandomSampler
    (``pos_fraction=0.25, neg_pos_ub=-1``): mmengine merged them into the
    sampler dict, which then trains with a 25% positive quota instead of
    the paper's rule."""
    if pos_fraction == 0.25 and neg_pos_ub == -1:
        print_log(
            f'{owner} got pos_fraction=0.25, neg_pos_ub=-1: the options of '
            "the base config's RandomSampler, merged into the sampler dict "
            'because it lacks `_delete_=True`. OHEM now keeps a 25% '
            "positive quota, not the paper's rule (positives and negatives "
            'ranked together). Add `_delete_=True` to the sampler dict; if '
            'the quota is meant, leave out `neg_pos_ub=-1` (the default) to '
            'silence this warning.',
            logger='current',
            level=logging.WARNING)
