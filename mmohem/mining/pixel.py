"""Hard-pixel mining for semantic segmentation (OHEM cross-entropy).

A valid pixel is *hard* when the softmax probability of its true class is
below ``thresh``, that is when its cross-entropy exceeds ``-log(thresh)``.
At least ``num_kept`` pixels of the batch are kept: when fewer are hard, the
least confident (highest cross-entropy) valid pixels are kept instead. With
no ``thresh``, the ``num_kept`` pixels of highest loss are kept.

The whole batch is mined at once, as mmseg's ``OHEMPixelSampler`` does, with
the same result. Counting the hard pixels is one pass; only when they do not
suffice does a radix select (:func:`top_loss_mask`, ``O(N)``) find the
highest losses. Nothing sorts the pixels, and nothing here allocates a
tensor of the logits' size.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

# Buckets of top_loss_mask: the top 16 bits of an int32 key, shifted to
# 1..65536 so that bucket 0 holds the pixels that are not eligible.
_BUCKET_OFFSET = 0x8001
_NUM_BUCKETS = 0x10001
# How errors name the label map: the field of mmseg's data samples.
LABELS_NAME = '`gt_sem_seg`'


def check_finite_logits(tensor: Tensor, name: str) -> None:
    """Raise ``FloatingPointError`` when ``tensor`` holds NaN or inf.

    One reduction pass (``aminmax``), no temporary of the tensor's size
    (except float16 on CPU, upcast for want of a kernel).

    Args:
        tensor (Tensor): Any floating tensor, e.g. logits Tensor[B, C, H, W].
        name (str): How the error message names the tensor.
    """
    if tensor.numel() == 0:
        return
    low, high = _extremes(tensor)
    if not bool(torch.isfinite(low) & torch.isfinite(high)):
        raise FloatingPointError(
            f'{name} contains NaN or infinite values (min {float(low)}, '
            f'max {float(high)}, shape {tuple(tensor.shape)}); the network '
            'diverged or its input is corrupt, so no loss is computed.')


def _extremes(tensor: Tensor) -> Tuple[Tensor, Tensor]:
    """``aminmax`` of a non-empty tensor (float16 upcast on the CPU, which
    has no float16 kernel for it)."""
    values = tensor.detach()
    if values.dtype == torch.float16 and values.device.type == 'cpu':
        values = values.float()
    return torch.aminmax(values)


def _bad_labels(labels: Tensor, valid: Tensor, num_classes: int) -> Tensor:
    """Bool mask of the valid pixels whose label is not a class index."""
    return valid & ((labels < 0) | (labels >= num_classes))


def check_pixel_inputs(logits: Tensor, labels: Tensor, valid: Tensor,
                       ignore_index: Optional[int], name: str) -> None:
    """:func:`check_finite_logits` and :func:`check_labels` with one read
    of the device.

    Args:
        logits (Tensor[B, C, H, W]): Class scores.
        labels (Tensor[B, H, W]): Class index of each pixel.
        valid (Tensor[B, H, W]): Bool mask of the pixels not ignored.
        ignore_index (int, optional): The label of ignored pixels.
        name (str): How an error names ``logits``.
    """
    checks = [_bad_labels(labels, valid, logits.size(1)).sum()]
    if logits.numel():
        checks.append(torch.isfinite(torch.stack(_extremes(logits))).all())
    num_bad, *finite = torch.stack(checks).tolist()
    if finite and not finite[0]:
        check_finite_logits(logits, name)
    if num_bad:
        check_labels(labels, valid, logits.size(1), ignore_index, LABELS_NAME)


def check_labels(labels: Tensor, valid: Tensor, num_classes: int,
                 ignore_index: Optional[int], name: str) -> None:
    """Raise ``ValueError`` when a valid pixel's label is not a class index.

    On CUDA such a label would stop the process with a device-side assert in
    the cross-entropy; here it is an error naming the tensor and the values.

    Args:
        labels (Tensor[B, H, W]): Class index of each pixel.
        valid (Tensor[B, H, W]): Bool mask of the pixels not ignored.
        num_classes (int): Number of classes of the logits.
        ignore_index (int, optional): The label of ignored pixels.
        name (str): How the error message names ``labels``.
    """
    bad = _bad_labels(labels, valid, num_classes)
    if not bool(bad.any()):
        return
    wrong = labels[bad]
    raise ValueError(
        f'{name} must hold class indices in [0, {num_classes - 1}] or the '
        f'ignore index {ignore_index}; got {int(bad.sum())} pixel(s) '
        f'labelled from {int(wrong.min())} to {int(wrong.max())} (label ids '
        'instead of train ids, e.g. Cityscapes ids, or a wrong '
        '`num_classes`).')


def valid_pixels(labels: Tensor, ignore_index: Optional[int]) -> Tensor:
    """Bool mask of the pixels whose label is not ``ignore_index``.

    Args:
        labels (Tensor[B, H, W]): Class index of each pixel.
        ignore_index (int, optional): Label of ignored pixels; ``None``
            ignores none.

    Returns:
        Tensor[B, H, W]: The mask.
    """
    if ignore_index is None:
        return torch.ones_like(labels, dtype=torch.bool)
    return labels != ignore_index


@torch.no_grad()
def pixel_nll(logits: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
    """Softmax cross-entropy of each pixel's true class, for ranking only.

    Computed without autograd, in float32, one class at a time, so that no
    temporary of the size of ``logits`` is allocated (a ``log_softmax``
    would allocate one).

    Args:
        logits (Tensor[B, C, H, W]): Class scores (finite).
        labels (Tensor[B, H, W]): Class index of each pixel.
        valid (Tensor[B, H, W]): Bool mask of the pixels to score.

    Returns:
        Tensor[B, H, W]: ``-log softmax(logits)[label]`` on valid pixels,
        0 elsewhere; float32.
    """
    peak = logits.amax(1).float()
    total = torch.zeros_like(peak)
    for scores in logits.unbind(1):
        total += torch.sub(scores, peak).exp_()
    target = logits.gather(1, labels.long().where(valid, 0)[:, None])[:, 0]
    nll = total.log_().add_(peak).sub_(target)
    return nll.masked_fill_(~valid, 0.)


def select_hard_pixels(losses: Tensor,
                       valid: Tensor,
                       thresh: Optional[float] = 0.7,
                       min_kept: int = 0,
                       min_kept_ratio: float = 0.) -> Tensor:
    """Keep the hard valid pixels, and at least ``num_kept`` of them.

    ``num_kept = max(min_kept, floor(min_kept_ratio * num_valid))`` for the
    whole batch. A pixel is hard when its loss exceeds ``-log(thresh)``
    (true-class probability below ``thresh``). When fewer than ``num_kept``
    are hard, the ``num_kept`` valid pixels of highest loss are kept (they
    include every hard pixel); when ``num_kept`` reaches the number of
    valid pixels, all valid pixels are kept. Ignored pixels never are.

    Args:
        losses (Tensor[B, H, W]): Per-pixel cross-entropy (finite on valid
            pixels); read only, never differentiated.
        valid (Tensor[B, H, W]): Bool mask of the pixels that may be kept.
        thresh (float, optional): Probability threshold in (0, 1]; ``None``
            keeps exactly the ``num_kept`` pixels of highest loss.
        min_kept (int): Least number of pixels kept in the batch.
        min_kept_ratio (float): Least share of the valid pixels kept.

    Returns:
        Tensor[B, H, W]: Bool mask of the kept pixels.
    """
    losses = losses.detach()
    if thresh is None:
        hard = torch.zeros_like(valid)
    else:
        hard = valid & (losses > -math.log(thresh))
    num_valid, num_hard = torch.stack(
        [valid.count_nonzero(), hard.count_nonzero()]).tolist()
    num_kept = max(min_kept, int(min_kept_ratio * num_valid))
    if num_hard >= num_kept:
        return hard
    if num_kept >= num_valid:
        return valid.clone()
    return hard | top_loss_mask(losses, valid, num_kept)


def top_loss_mask(losses: Tensor, valid: Tensor, num: int) -> Tensor:
    """Bool mask of the ``num`` valid pixels of highest loss in the batch.

    A radix select, ``O(N)`` and no sort: float32 losses are mapped to
    int32 keys that order like them; a histogram of the keys' top 16 bits
    finds the bucket holding the ``num``-th highest loss, everything above
    it is kept, and an exact top-k among that bucket's few pixels completes
    the selection. Exactly ``num`` pixels are kept, ties broken
    arbitrarily.

    Args:
        losses (Tensor[B, H, W]): Per-pixel loss (finite).
        valid (Tensor[B, H, W]): Bool mask of the eligible pixels; holds at
            least ``num`` (>= 1) pixels.
        num (int): How many pixels to keep.

    Returns:
        Tensor[B, H, W]: The mask.
    """
    keys = _ordered_keys(losses.detach().float()).flatten()
    buckets = ((keys >> 16) + _BUCKET_OFFSET).where(valid.flatten(), 0)
    counts = torch.bincount(buckets, minlength=_NUM_BUCKETS + 1)
    at_or_above = counts.flip(0).cumsum(0).flip(0)
    boundary = (at_or_above[1:] >= num).sum()
    boundary, rest = torch.stack([boundary,
                                  num - at_or_above[boundary + 1]]).tolist()
    mask = buckets > boundary
    tied = (buckets == boundary).nonzero().squeeze(1)
    chosen = keys[tied].topk(rest, sorted=False).indices
    return mask.index_fill_(0, tied[chosen], True).view_as(valid)


def _ordered_keys(values: Tensor) -> Tensor:
    """int32 keys of float32 ``values`` with the same order (-0 < +0)."""
    bits = values.contiguous().view(torch.int32)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def hard_pixel_mask(logits: Tensor,
                    labels: Tensor,
                    thresh: Optional[float] = 0.7,
                    min_kept: int = 0,
                    min_kept_ratio: float = 0.,
                    ignore_index: Optional[int] = 255,
                    name: str = 'logits') -> Tensor:
    """OHEM keep mask of a batch, straight from the logits.

    Args:
        logits (Tensor[B, C, H, W]): Class scores.
        labels (Tensor[B, H, W]): Class index of each pixel.
        thresh (float, optional): See :func:`select_hard_pixels`.
        min_kept (int): See :func:`select_hard_pixels`.
        min_kept_ratio (float): See :func:`select_hard_pixels`.
        ignore_index (int, optional): Label of ignored pixels.
        name (str): How an error names ``logits``.

    Returns:
        Tensor[B, H, W]: Bool mask of the kept pixels.

    Raises:
        FloatingPointError: When ``logits`` holds NaN or inf.
        ValueError: When a label is neither a class nor ``ignore_index``.
    """
    valid = valid_pixels(labels, ignore_index)
    check_pixel_inputs(logits, labels, valid, ignore_index, name)
    return select_hard_pixels(
        pixel_nll(logits, labels, valid), valid, thresh, min_kept,
        min_kept_ratio)
