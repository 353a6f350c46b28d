"""Per-example losses used to rank detection candidates."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def cls_losses(cls_score: Tensor, labels: Tensor) -> Tensor:
    """Per-example softmax cross-entropy, in float32 whatever the input dtype.

    Args:
        cls_score (Tensor[..., C]): Class logits, background included.
        labels (Tensor[...]): Target class of each example (the background
            index for negatives).

    Returns:
        Tensor[...]: Per-example loss, float32.
    """
    return F.cross_entropy(
        cls_score.float().flatten(0, -2), labels.flatten(),
        reduction='none').view(labels.shape)


def box_losses(bbox_pred: Tensor,
               bbox_targets: Tensor,
               is_pos: Tensor,
               beta: float = 1.0) -> Tensor:
    """Per-example smooth-L1 box loss, summed over the 4 coordinates; zero
    for negatives. Float32 whatever the input dtype.

    Args:
        bbox_pred (Tensor[..., 4]): Predicted regression of the target class.
        bbox_targets (Tensor[..., 4]): Regression targets, read where
            ``is_pos`` only.
        is_pos (Tensor[...]): Bool mask of positives.
        beta (float): Smooth-L1 transition point.

    Returns:
        Tensor[...]: Per-example loss, float32.
    """
    loss = F.smooth_l1_loss(
        bbox_pred.float(), bbox_targets.float(), reduction='none',
        beta=beta).sum(-1)
    return torch.where(is_pos, loss, loss.new_zeros(()))


def example_losses(cls_score: Tensor,
                   labels: Tensor,
                   bbox_pred: Optional[Tensor] = None,
                   bbox_targets: Optional[Tensor] = None,
                   is_pos: Optional[Tensor] = None,
                   beta: float = 1.0) -> Tensor:
    """Classification cross-entropy plus the smooth-L1 box loss of positives.

    Args:
        cls_score (Tensor[..., C]): Class logits, background included.
        labels (Tensor[...]): Target class of each example.
        bbox_pred (Tensor[..., 4], optional): Predicted regression of the
            target class; ``None`` ranks on classification loss alone.
        bbox_targets (Tensor[..., 4], optional): Regression targets.
        is_pos (Tensor[...], optional): Bool mask of positives; required
            with ``bbox_pred``.
        beta (float): Smooth-L1 transition point.

    Returns:
        Tensor[...]: Per-example loss, float32.
    """
    loss = cls_losses(cls_score, labels)
    if bbox_pred is None:
        return loss
    return loss + box_losses(bbox_pred, bbox_targets, is_pos, beta)
