"""What every detection miner shares: the mining rule, the statistics of
what it kept, and the capture that ``mmohem.OHEMVisHook`` draws.

The RoI sampler (:class:`~mmohem.det.OHEMSampler`, one image per call) and
the dense heads' miner (:class:`~mmohem.det.dense_miner.DenseBoxMiner`, one
batch per call) are :class:`BoxMiner` subclasses; both are configured as
``dict(type='mmohem.OHEMSampler', ...)``.
"""
from typing import Tuple

from torch import Tensor

from mmohem.mining import CapturableMiner, MiningResult
from mmohem.utils import MiningStats, signature_options
from .mining_rule import BoxMiningRule, summarise

#: How the options are named in messages.
OWNER = 'mmohem.OHEMSampler'
#: The mining rule's options, which every box miner takes.
RULE_OPTIONS = tuple(
    name for name in signature_options(BoxMiningRule.__init__)
    if name != 'owner')


class BoxMiner(CapturableMiner):
    """Mines scored candidates with a :class:`BoxMiningRule` and records
    the statistics of each call.

    Args:
        stats_prefix (str): Inserted into the log keys, ``'s1_'`` for the
            second cascade stage.
        *rule_args, **rule_kwargs: The mining rule's options
            (:data:`RULE_OPTIONS`), see
            :class:`~mmohem.det.mining_rule.BoxMiningRule`.
    """

    def __init__(self, stats_prefix: str, *rule_args, **rule_kwargs) -> None:
        self.rule = BoxMiningRule(OWNER, *rule_args, **rule_kwargs)
        self.stats = MiningStats(stats_prefix, summarise)

    def mine(self, losses: Tensor, valid: Tensor, is_pos: Tensor,
             boxes: Tensor, labels: Tensor) -> Tuple[MiningResult, Tensor]:
        """Apply the mining rule (budget, loss-NMS, quota) to each image
        and record the statistics on the device (no host read).

        Arguments: those of
        :meth:`~mmohem.det.mining_rule.BoxMiningRule.mine`.

        Returns:
            tuple[MiningResult, Tensor]: The kept, examined and suppressed
            masks, and the kept positives (Tensor[B, N]).
        """
        result = self.rule.mine(losses, valid, is_pos, boxes, labels)
        kept_pos = result.kept & is_pos
        self.stats.add(self.rule.statistics(result, losses, kept_pos))
        if self.ohem_capture is not None:
            self.ohem_capture.store_boxes(result, boxes, is_pos)
        return result, kept_pos
