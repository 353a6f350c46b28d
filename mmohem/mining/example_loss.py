"""Per-example loss used to rank detection candidates."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def example_losses(cls_score: Tensor,
                   labels: Tensor,
                   bbox_pred: Optional[Tensor] = None,
                   bbox_targets: Optional[Tensor] = None,
                   is_pos: Optional[Tensor] = None,
                   beta: float = 1.0) -> Tensor:
    """Classification cross-entropy plus the smooth-L1 box loss of positives.

    Computed in float32 whatever the dtype of the scores (AMP).

    Args:
        cls_score (Tensor[..., C]): Class logits, background included.
        labels (Tensor[...]): Target class of each example (the background
            index for negatives).
        bbox_pred (Tensor[..., 4], optional): Predicted box regression of
            the target class; ``None`` ranks on classification loss alone.
        bbox_targets (Tensor[..., 4], optional): Regression targets, read
            where ``is_pos`` only.
        is_pos (Tensor[...], optional): Bool mask of positives; required
            with ``bbox_pred``.
        beta (float): Smooth-L1 transition point.

    Returns:
        Tensor[...]: Per-example loss, float32.
    """
    loss = F.cross_entropy(
        cls_score.float().flatten(0, -2), labels.flatten(),
        reduction='none').view(labels.shape)
    if bbox_pred is None:
        return loss
    box_loss = F.smooth_l1_loss(
        bbox_pred.float(), bbox_targets.float(), reduction='none',
        beta=beta).sum(-1)
    return loss + torch.where(is_pos, box_loss, box_loss.new_zeros(()))
