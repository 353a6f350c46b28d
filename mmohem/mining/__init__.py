"""Mining math in plain torch: no registry, no mmdet / mmseg imports."""
from .capture import CapturableMiner, MiningCapture
from .example_loss import box_losses, cls_losses, example_losses
from .hard_examples import (MiningResult, loss_nms, mine_hard_examples,
                            select_top_losses)
from .pixel import (check_finite_logits, hard_pixel_mask, pixel_nll,
                    select_hard_pixels, top_loss_mask, valid_pixels)

__all__ = [
    'CapturableMiner', 'MiningCapture', 'MiningResult', 'box_losses',
    'cls_losses', 'example_losses', 'loss_nms', 'mine_hard_examples',
    'select_top_losses', 'check_finite_logits', 'hard_pixel_mask',
    'pixel_nll', 'select_hard_pixels', 'top_loss_mask', 'valid_pixels'
]
