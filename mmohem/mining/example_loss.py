"""Per-example losses used to rank detection candidates."""
from typing import Optional, Sequence

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
               weights: Tensor,
               beta: float = 1.0) -> Tensor:
    """Per-example smooth-L1 box loss, each coordinate weighted (mmdet's
    box weights: 1 for positives, 0 for the others), summed over the 4
    coordinates. Float32 whatever the input dtype.

    Args:
        bbox_pred (Tensor[..., 4]): Predicted regression.
        bbox_targets (Tensor[..., 4]): Regression targets.
        weights (Tensor[..., 4]): Weight of each coordinate.
        beta (float): Smooth-L1 transition point.

    Returns:
        Tensor[...]: Per-example loss, float32.
    """
    loss = F.smooth_l1_loss(
        bbox_pred.float(), bbox_targets.float(), reduction='none', beta=beta)
    return (loss * weights).sum(-1)


def _smooth_l1(bbox_pred: Tensor, bbox_targets: Tensor, beta: float) -> Tensor:
    """Smooth-L1 summed over the coordinates, float32: Tensor[...]."""
    return F.smooth_l1_loss(
        bbox_pred.float(), bbox_targets.float(), reduction='none',
        beta=beta).sum(-1)


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
    return torch.where(is_pos,
                       loss + _smooth_l1(bbox_pred, bbox_targets, beta), loss)


def delta_affine(means: Sequence[float], stds: Sequence[float],
                 device: torch.device) -> Tensor:
    """Scale and shift of :func:`delta_targets` for a delta coder's
    ``target_means`` and ``target_stds``.

    Returns:
        Tensor[2, 4]: Row 0 multiplies the raw ``(2 dx, 2 dy, dw, dh)``,
        row 1 is added.
    """
    scale = [0.5 / stds[0], 0.5 / stds[1], 1 / stds[2], 1 / stds[3]]
    shift = [-m / s for m, s in zip(means, stds)]
    return torch.tensor([scale, shift], device=device)


def delta_targets(priors: Tensor, gt_bboxes: Tensor, affine: Tensor) -> Tensor:
    """Normalised ``(dx, dy, dw, dh)`` regression targets of ``gt_bboxes``
    from ``priors``: what mmdet's ``DeltaXYWHBBoxCoder.encode`` computes,
    in seven operations instead of its 25 (the differences are written
    into one buffer, which is then divided once).

    Args:
        priors (Tensor[N, 4]): Candidate boxes ``(x1, y1, x2, y2)``.
        gt_bboxes (Tensor[N, 4]): The box each candidate regresses to.
        affine (Tensor[2, 4]): :func:`delta_affine` of the coder.

    Returns:
        Tensor[N, 4]: Float32 targets.
    """
    priors, gt_bboxes = priors.float(), gt_bboxes.float()
    # Rows: twice the centre offset, the ground truth's size, the prior's.
    parts = priors.new_empty((priors.size(0), 3, 2))
    gap = gt_bboxes - priors
    torch.add(gap[:, :2], gap[:, 2:], out=parts[:, 0])
    torch.sub(gt_bboxes[:, 2:], gt_bboxes[:, :2], out=parts[:, 1])
    torch.sub(priors[:, 2:], priors[:, :2], out=parts[:, 2])
    ratios = parts[:, :2] / parts[:, 2:]
    ratios[:, 1].log_()
    return torch.addcmul(affine[1], ratios.flatten(1), affine[0])
