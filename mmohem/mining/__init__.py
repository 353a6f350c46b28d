"""Mining math in plain torch: no registry, no mmdet / mmseg imports."""
from .example_loss import box_losses, cls_losses, example_losses
from .hard_examples import (MiningResult, loss_nms, mine_hard_examples,
                            select_top_losses)

__all__ = [
    'MiningResult', 'box_losses', 'cls_losses', 'example_losses', 'loss_nms',
    'mine_hard_examples', 'select_top_losses'
]
