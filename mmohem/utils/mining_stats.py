"""Mining statistics: summed on the device, written to the MessageHub with
one host copy.

Every OHEM miner logs through :class:`MiningStats` under
``train/ohem/<prefix><name>``. A miner called once per batch (a dense head,
a decode head) publishes each call; the RoI sampler, called once per image,
adds each image's statistics on the device and publishes their mean once
per iteration. Nothing here communicates between ranks: as mmengine logs
each rank's own losses, the log shows rank 0's mining, and an error raised
on one rank can never leave the others waiting in a collective.
"""
from typing import Optional, Tuple

import torch
from mmengine.logging import MessageHub
from torch import Tensor

KEY_PREFIX = 'train/ohem/'


class MiningStats:
    """Per-call statistics summed on the device until published.

    Args:
        prefix (str): Inserted between ``train/ohem/`` and each name, e.g.
            ``'s1.'`` for the second cascade stage.
    """

    def __init__(self, prefix: str = '') -> None:
        self.prefix = prefix
        self._names: Tuple[str, ...] = ()
        self._sum: Optional[Tensor] = None
        self._calls = 0

    def add(self, **stats: Tensor) -> None:
        """Add one call's statistics (0-dim tensors), without a host copy.

        Args:
            **stats (Tensor): Each statistic by name, e.g.
                ``num_pos=tensor(12)``.
        """
        values = torch.stack([value.float() for value in stats.values()])
        if self._sum is None:
            self._names, self._sum = tuple(stats), values
        else:
            self._sum = self._sum + values
        self._calls += 1

    def publish(self) -> None:
        """Write the mean over the added calls to the current MessageHub
        (one device-to-host copy) and start afresh; nothing when empty."""
        if self._sum is None:
            return
        means = (self._sum / self._calls).tolist()
        MessageHub.get_current_instance().update_scalars({
            f'{KEY_PREFIX}{self.prefix}{name}':
            value
            for name, value in zip(self._names, means)
        })
        self._sum, self._calls = None, 0

    def log(self, **stats: Tensor) -> None:
        """:meth:`add` then :meth:`publish`: one call, one host copy."""
        self.add(**stats)
        self.publish()
