"""What an armed miner keeps of one iteration, for ``mmohem.OHEMVisHook``.

Zero cost unless armed: a miner's ``ohem_capture`` is ``None`` (the class
default of :class:`CapturableMiner`) and it stores nothing. The hook arms a
miner on a drawing iteration only, by giving it an empty
:class:`MiningCapture`; the miner's first call of that iteration fills it
with its first image (a RoI head mines one image per call, image 0 first;
a dense head or a decode head mines the whole batch in one call), detached
and on the device, and later calls leave it alone. The hook reads it after
the iteration and disarms the miner.
"""
from dataclasses import dataclass
from typing import Optional

from torch import Tensor

from .hard_examples import MiningResult


@dataclass
class MiningCapture:
    """The first image of an iteration's mining, stored by an armed miner.

    Box miners fill every field; pixel miners fill ``kept`` only.

    Attributes:
        kept (Tensor[N] | Tensor[H, W], optional): Bool mask of the kept
            candidates (``boxes`` given) or of the kept pixels, at label
            resolution (which may include the batch padding).
        boxes (Tensor[N, 4], optional): Candidate boxes ``(x1, y1, x2,
            y2)`` in network-input pixels (resized, before padding).
        is_pos (Tensor[N], optional): Bool mask of the positives.
        suppressed (Tensor[N], optional): Bool mask of the candidates that
            the loss-based NMS removed.
    """

    kept: Optional[Tensor] = None
    boxes: Optional[Tensor] = None
    is_pos: Optional[Tensor] = None
    suppressed: Optional[Tensor] = None

    @property
    def empty(self) -> bool:
        """Whether nothing was stored yet."""
        return self.kept is None

    def store_boxes(self, result: MiningResult, boxes: Tensor,
                    is_pos: Tensor) -> None:
        """Store image 0 of a box-mining call, unless already filled.

        Args:
            result (MiningResult): Masks of the call, each Tensor[B, N].
            boxes (Tensor[B, N, 4]): The candidate boxes.
            is_pos (Tensor[B, N]): Bool mask of the positives.
        """
        if not self.empty:
            return
        self.kept = result.kept[0].detach().clone()
        self.suppressed = result.suppressed[0].detach().clone()
        self.boxes = boxes[0].detach().clone()
        self.is_pos = is_pos[0].detach().clone()

    def store_pixels(self, keep: Tensor) -> None:
        """Store image 0 of a pixel-mining call, unless already filled.

        Args:
            keep (Tensor[B, H, W]): Bool mask of the kept pixels.
        """
        if self.empty:
            self.kept = keep[0].detach().clone()


class CapturableMiner:
    """Mixin of the OHEM miners that ``mmohem.OHEMVisHook`` can arm.

    Attributes:
        ohem_capture (MiningCapture, optional): ``None`` (the class
            default, nothing stored) unless the hook armed this miner for
            the current iteration.
    """

    ohem_capture: Optional[MiningCapture] = None
