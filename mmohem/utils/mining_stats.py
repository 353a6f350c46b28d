"""Mining statistics: kept on the device, written to the MessageHub with
one host copy.

Every OHEM miner logs through :class:`MiningStats` under
``train/ohem_<prefix><name>``, one flat name without ``/`` as OpenMMLab
names its own training scalars (``loss_cls``, ``grad_norm``): mmdet's
``analyze_logs.py`` takes a key holding ``/`` for a validation metric.

A box miner adds one row of raw sums per image (counts and loss sums, no
division on the device) and publishes once per iteration: a dense head
after its one call, the RoI sampler (called once per image) when the bbox
head's training forward starts. Publishing stacks the rows, reads them
with one host copy and lets the miner's ``summarise`` turn them into the
logged values. A miner whose statistics are known on the host logs them
with :meth:`MiningStats.log`. Nothing here communicates between ranks: as
mmengine logs each rank's own losses, the log shows rank 0's mining, and
an error raised on one rank can never leave the others waiting in a
collective.
"""
from typing import Callable, Dict, List, Optional, Union

import torch
from mmengine.logging import MessageHub
from torch import Tensor

KEY_PREFIX = 'train/ohem_'

#: Host rows (one list of floats per image) -> the logged scalars.
Summarise = Callable[[List[List[float]]], Dict[str, float]]


class MiningStats:
    """Rows of raw per-image sums, kept on the device until published.

    Args:
        prefix (str): Inserted between ``train/ohem_`` and each name, e.g.
            ``'s1_'`` for the second cascade stage.
        summarise (callable, optional): Turns the published rows into the
            logged scalars; may raise on what the rows reveal (a
            non-finite loss sum). Required by :meth:`add`.
    """

    def __init__(self,
                 prefix: str = '',
                 summarise: Optional[Summarise] = None) -> None:
        self.prefix = prefix
        self.summarise = summarise
        self._rows: List[Tensor] = []

    def add(self, rows: Tensor) -> None:
        """Keep one call's rows, without a host copy or any operation.

        Args:
            rows (Tensor[B, K]): One row of ``K`` sums per image.
        """
        self._rows.append(rows)

    def publish(self) -> None:
        """Summarise the rows added since the last publication (one
        device-to-host copy), write the scalars and start afresh; nothing
        when no row was added."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        stacked = rows[0] if len(rows) == 1 else torch.cat(rows)
        self.log(**self.summarise(stacked.tolist()))

    def log(self, **scalars: Union[float, Tensor]) -> None:
        """Write named scalars to the current MessageHub at once; 0-dim
        tensors among them are read with one host copy.

        Args:
            **scalars (float | Tensor): Each value by name, e.g.
                ``kept_fraction=0.25``.
        """
        tensors = [k for k, v in scalars.items() if torch.is_tensor(v)]
        if tensors:
            values = torch.stack([scalars[k].float()
                                  for k in tensors]).tolist()
            scalars = dict(scalars, **dict(zip(tensors, values)))
        MessageHub.get_current_instance().update_scalars({
            f'{KEY_PREFIX}{self.prefix}{name}':
            float(value)
            for name, value in scalars.items()
        })
