"""The box miner of the OHEM dense heads, built from their
``train_cfg.sampler``.

A dense head is configured as an RoI head is, with
``train_cfg.sampler=dict(type='mmohem.OHEMSampler', ...)``: the mining rule's
options and ``nms_boxes``. :class:`~mmohem.det.OHEMDenseHeadMixin` takes the
dict out of ``train_cfg`` before mmdet's head builds its sampler and builds
a :class:`DenseBoxMiner` from it with :func:`build_dense_miner`.
"""
from typing import Any, Mapping, Tuple

from mmdet.registry import TASK_UTILS
from torch import Tensor, nn

from mmohem.mining import MiningResult
from mmohem.utils import check_choice, reject_unknown_options
from .box_miner import OWNER, RULE_OPTIONS, BoxMiner

NMS_BOX_CHOICES = ('candidates', 'predicted')


class DenseBoxMiner(BoxMiner):
    """OHEM of an anchor-based dense head: mines a whole batch per call and
    publishes its statistics at once.

    Args:
        nms_boxes (str): The boxes the loss-NMS compares: ``'candidates'``
            (the prior anchors) or ``'predicted'`` (the decoded box
            predictions).
        **rule_options: The mining rule's options, see
            :class:`~mmohem.det.mining_rule.BoxMiningRule`.
    """

    def __init__(self, nms_boxes: str = 'candidates', **rule_options) -> None:
        super().__init__('', **rule_options)
        check_choice(OWNER, 'nms_boxes', nms_boxes, NMS_BOX_CHOICES)
        self.nms_boxes = nms_boxes

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.rule!r}, '
                f'nms_boxes={self.nms_boxes!r})')

    def mine(self, losses: Tensor, valid: Tensor, is_pos: Tensor,
             boxes: Tensor, labels: Tensor) -> Tuple[MiningResult, Tensor]:
        """:meth:`BoxMiner.mine` of a batch, whose statistics are published
        at once (one host read)."""
        mined = super().mine(losses, valid, is_pos, boxes, labels)
        self.stats.publish()
        return mined


def build_dense_miner(cfg: Mapping[str, Any],
                      head: nn.Module) -> DenseBoxMiner:
    """The miner of ``train_cfg.sampler``, which must name
    ``mmohem.OHEMSampler``.

    Args:
        cfg (Mapping): The sampler dict of the head's ``train_cfg``.
        head (nn.Module): The dense head (for error messages).

    Raises:
        TypeError: For another sampler, an option of the RoI sampler or an
            unknown option.
    """
    from .ohem_sampler import OHEMSampler, roi_sampler_options
    name = f'mmohem.{type(head).__name__}'
    options = dict(cfg or {})
    kind = options.pop('type', None)
    found = TASK_UTILS.get(kind) if isinstance(kind, str) else kind
    if found is not OHEMSampler:
        raise TypeError(
            f"{name}: `train_cfg.sampler` must be dict(type='{OWNER}', "
            f'...), got {kind!r}.')
    wrong = [key for key in roi_sampler_options() if key in options]
    if wrong:
        raise TypeError(
            f'{OWNER}: {", ".join(f"`{w}`" for w in wrong)} is not used for '
            f'{type(head).__name__} (a dense head); remove it. Dense heads '
            "take `nms_boxes` besides the mining rule's options.")
    known = RULE_OPTIONS + ('nms_boxes', )
    reject_unknown_options(OWNER, {
        k: v
        for k, v in options.items() if k not in known
    }, known)
    return DenseBoxMiner(**options)
