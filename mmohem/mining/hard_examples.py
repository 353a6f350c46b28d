"""Loss-based NMS and top-k selection of hard examples.

Shrivastava, Gupta and Girshick, "Training Region-based Object Detectors with
Online Hard Example Mining", CVPR 2016: every candidate of an image is scored,
near-duplicates are removed by NMS on the *loss*, and the ``num`` candidates of
highest loss are kept.

Every function takes a padded batch of ``B`` images with ``N`` candidates each
and a ``valid`` mask marking the candidates that may be mined (real, not
ignored). A RoI head calls them with ``B = 1``; a dense head with the anchors
of the whole batch. Nothing here loops over boxes in Python.
"""
from functools import lru_cache
from typing import Iterator, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torchvision.ops import nms

_MIN_NMS_PREFIX = 64
# Boxes per loss-NMS call: a CUDA NMS kernel (torchvision's, as mmcv's)
# allocates an N x N/64 int64 mask: 32 MiB at this size, 5 GiB at 200k.
NMS_CHUNK = 16384


class MiningResult(NamedTuple):
    """Masks returned by :func:`mine_hard_examples`, each ``Tensor[B, N]``.

    Attributes:
        kept: The mined hard examples.
        examined: Candidates that took part in the loss-based NMS (all valid
            candidates when NMS is off).
        suppressed: Examined candidates removed by the loss-based NMS.
    """
    kept: Tensor
    examined: Tensor
    suppressed: Tensor


def loss_nms(boxes: Tensor,
             losses: Tensor,
             valid: Tensor,
             iou_thr: float,
             labels: Optional[Tensor] = None,
             max_boxes: int = NMS_CHUNK) -> Tensor:
    """Greedy NMS that ranks boxes by loss, separately for each image.

    Images (and labels) are independent groups. Whole groups are gathered
    into chunks of about ``max_boxes`` boxes, and the boxes of a chunk go
    through one NMS call, shifted apart by group so that groups never
    overlap. A chunk holds fewer than ``max_boxes`` boxes plus its last
    group, so the memory of the NMS kernel (a CUDA kernel allocates an
    ``N x N/64`` int64 mask) is bounded by the chunk, whatever the batch.

    Args:
        boxes (Tensor[B, N, 4]): Candidate boxes, ``(x1, y1, x2, y2)``.
        losses (Tensor[B, N]): Per-candidate loss, the NMS score.
        valid (Tensor[B, N]): Bool mask of candidates taking part.
        iou_thr (float): A candidate is suppressed by a higher-loss candidate
            of its group overlapping it with IoU above this value.
        labels (Tensor[B, N], optional): When given, NMS runs per image and
            label; otherwise per image, class-agnostic.
        max_boxes (int): Boxes per NMS call, whole groups kept together.

    Returns:
        Tensor[B, N]: Bool mask of the valid candidates that survive.
    """
    flat = valid.flatten().nonzero().squeeze(1)
    survive = torch.zeros_like(valid).flatten()
    if flat.numel() == 0:
        return survive.view_as(valid)
    group = torch.div(flat, losses.size(1), rounding_mode='floor')
    if labels is not None:
        flat_labels = labels.flatten()[flat]
        group = group * (flat_labels.max() + 1) + flat_labels
    cand_boxes = boxes.flatten(0, 1)[flat].float()
    scores = losses.flatten()[flat].float()
    for members in _group_chunks(group, max_boxes):
        keep = _shifted_nms(cand_boxes[members], scores[members],
                            group[members], iou_thr)
        survive[flat[members[keep]]] = True
    return survive.view_as(valid)


def _group_chunks(group: Tensor, max_boxes: int) -> Iterator[Tensor]:
    """Indices of the boxes of each chunk of whole groups.

    A group goes to chunk ``start // max_boxes``, ``start`` being the number
    of boxes of the groups numbered before it, so a chunk holds consecutive
    groups whose first boxes fall in one window of ``max_boxes``.

    Args:
        group (Tensor[M]): Group id (>= 0) of each box.
        max_boxes (int): Chunk size.

    Yields:
        Tensor[K]: Indices into ``group`` of one chunk's boxes.
    """
    if group.numel() <= max_boxes:
        yield torch.arange(group.numel(), device=group.device)
        return
    sizes = torch.bincount(group)
    chunk_of_group = torch.div(
        sizes.cumsum(0) - sizes, max_boxes, rounding_mode='floor')
    box_chunk = chunk_of_group[group]
    for chunk in range(int(chunk_of_group[-1]) + 1):
        members = (box_chunk == chunk).nonzero().squeeze(1)
        if members.numel():
            yield members


def _shifted_nms(boxes: Tensor, scores: Tensor, group: Tensor,
                 iou_thr: float) -> Tensor:
    """One NMS call over several groups, shifted apart; kept indices."""
    group = group - group.min()
    low = boxes.min()
    span = boxes.max() - low + 1
    shifted = boxes - low + (group.to(boxes) * span)[:, None]
    return nms(shifted.contiguous(), scores.contiguous(), iou_thr)


def select_top_losses(losses: Tensor,
                      eligible: Tensor,
                      is_pos: Tensor,
                      num: Union[int, Tensor],
                      pos_fraction: Optional[float] = None,
                      neg_pos_ub: float = -1) -> Tensor:
    """Keep the ``num`` eligible candidates of highest loss in each image.

    Args:
        losses (Tensor[B, N]): Per-candidate loss.
        eligible (Tensor[B, N]): Bool mask of candidates that may be kept.
        is_pos (Tensor[B, N]): Bool mask of positive (foreground) candidates.
        num (int | Sequence[int] | Tensor[B]): How many to keep in each
            image.
        pos_fraction (float, optional): ``None`` lets positives and
            negatives compete on loss alone. A float reserves
            ``int(num * pos_fraction)`` places for the hardest positives;
            the hardest negatives fill the rest (mmdet's sampler quota).
        neg_pos_ub (float): With ``pos_fraction``, at most
            ``int(neg_pos_ub * max(1, kept positives))`` negatives; a
            negative value means no bound.

    Returns:
        Tensor[B, N]: Bool mask of the kept candidates.
    """
    num, most = _budget(num, losses)
    return _select_top(losses, eligible, is_pos, num, most, pos_fraction,
                       neg_pos_ub)


def _select_top(losses: Tensor, eligible: Tensor, is_pos: Tensor, num: Tensor,
                most: int, pos_fraction: Optional[float],
                neg_pos_ub: float) -> Tensor:
    """:func:`select_top_losses` with ``num`` as Tensor[B] and its largest
    value ``most`` known on the host (no device read)."""
    scores = losses.float().masked_fill(~eligible, float('-inf'))
    if pos_fraction is None:
        return _row_topk_mask(scores, num, most)
    pos_eligible = eligible & is_pos
    num_pos = torch.minimum(
        pos_eligible.sum(1), (num * pos_fraction).floor().long())
    pos_kept = _row_topk_mask(
        scores.masked_fill(~is_pos, float('-inf')), num_pos,
        int(most * pos_fraction))
    num_neg = num - num_pos
    if neg_pos_ub >= 0:
        bound = (neg_pos_ub * num_pos.clamp(min=1)).floor().long()
        num_neg = torch.minimum(num_neg, bound)
    neg_kept = _row_topk_mask(
        scores.masked_fill(is_pos, float('-inf')), num_neg, most)
    return pos_kept | neg_kept


def mine_hard_examples(losses: Tensor,
                       valid: Tensor,
                       is_pos: Tensor,
                       boxes: Tensor,
                       num: Union[int, Tensor],
                       nms_thr: Optional[float] = 0.7,
                       labels: Optional[Tensor] = None,
                       pos_fraction: Optional[float] = None,
                       neg_pos_ub: float = -1,
                       check_finite: bool = True) -> MiningResult:
    """Loss-based NMS followed by the top-``num`` selection, per image.

    Greedy NMS decides whether a candidate survives from the candidates of
    higher loss alone, so the hardest survivors are found exactly from a
    prefix of the candidates sorted by loss. The prefix starts at
    ``4 * num`` and doubles until every image has enough survivors (or is
    wholly covered): with thousands of anchors and a few hundred kept, NMS
    never sees most of the easy negatives. One image (a RoI head's call)
    without a positive quota goes through one NMS call over all its
    candidates, whose survivors come sorted by loss (:func:`_mine_image`);
    a batch without a quota through one NMS call over the prefixes of its
    images, shifted apart (:func:`_mine_batch`). A NaN loss among the
    candidates that may be mined takes part (and shows in the statistics'
    sums) rather than being left out.

    Args:
        losses (Tensor[B, N]): Per-candidate loss (must be finite on
            ``valid``).
        valid (Tensor[B, N]): Bool mask of candidates that may be mined.
        is_pos (Tensor[B, N]): Bool mask of positive candidates.
        boxes (Tensor[B, N, 4]): Candidate boxes for the NMS.
        num (int | Sequence[int] | Tensor[B]): How many to keep in each
            image.
        nms_thr (float, optional): IoU threshold of the loss-based NMS;
            ``None`` turns NMS off.
        labels (Tensor[B, N], optional): Assigned labels (background
            included) for NMS per label; ``None`` for class-agnostic NMS.
        pos_fraction (float, optional): See :func:`select_top_losses`.
        neg_pos_ub (float): See :func:`select_top_losses`.
        check_finite (bool): Raise ``FloatingPointError`` when a valid
            candidate's loss is NaN or infinite (one read of the device);
            a caller that checks later, from the sums of its statistics,
            passes ``False``.

    Returns:
        MiningResult: The kept, examined and suppressed masks.
    """
    if (losses.size(0) == 1 and isinstance(num, int) and pos_fraction is None
            and losses.size(1) <= NMS_CHUNK):
        if check_finite:
            _budget(num, losses, valid)
        return _mine_image(losses[0], valid[0], boxes[0], int(num), nms_thr,
                           None if labels is None else labels[0])
    num, most = _budget(num, losses, valid if check_finite else None)
    if nms_thr is None:
        kept = _select_top(losses, valid, is_pos, num, most, pos_fraction,
                           neg_pos_ub)
        return MiningResult(kept, valid, torch.zeros_like(valid))
    if pos_fraction is None:
        return _mine_batch(losses, valid, boxes, num, most, nms_thr, labels)
    scores = losses.float().masked_fill(~valid, float('-inf'))
    prefix = max(_MIN_NMS_PREFIX, 4 * most)
    while prefix < scores.size(1):
        top_scores, top_idx = scores.topk(prefix, dim=1)
        top_valid = top_scores != float('-inf')
        top_labels = None if labels is None else labels.gather(1, top_idx)
        top_boxes = boxes.gather(1, top_idx[..., None].expand(-1, -1, 4))
        survive = loss_nms(top_boxes, top_scores, top_valid, nms_thr,
                           top_labels)
        if _prefix_suffices(survive, is_pos.gather(1, top_idx), top_valid, num,
                            pos_fraction, valid & is_pos):
            examined = torch.zeros_like(valid).scatter_(1, top_idx, top_valid)
            survivors = torch.zeros_like(valid).scatter_(1, top_idx, survive)
            break
        prefix *= 2
    else:
        examined = valid
        survivors = loss_nms(boxes, scores, valid, nms_thr, labels)
    kept = _select_top(losses, survivors, is_pos, num, most, pos_fraction,
                       neg_pos_ub)
    return MiningResult(kept, examined, examined & ~survivors)


def _mine_image(losses: Tensor, valid: Tensor, boxes: Tensor, num: int,
                nms_thr: Optional[float],
                labels: Optional[Tensor]) -> MiningResult:
    """:func:`mine_hard_examples` of one image without a positive quota.

    The candidates that may not be mined take part with a loss of
    ``-inf``: greedy NMS visits them last, so they suppress none of the
    others, and they are never kept. The NMS returns its survivors sorted
    by loss, so the first ``num`` are the selection; no top-k follows.

    Args:
        losses (Tensor[N]): Per-candidate loss.
        valid (Tensor[N]): Bool mask of candidates that may be mined.
        boxes (Tensor[N, 4]): Candidate boxes.
        num (int): How many to keep.
        nms_thr (float, optional): IoU threshold; ``None``: no NMS.
        labels (Tensor[N], optional): Labels for NMS per label.

    Returns:
        MiningResult: Masks of shape Tensor[1, N].
    """
    scores = losses.float().masked_fill(~valid, float('-inf'))
    if nms_thr is None:
        order = scores.topk(min(num, scores.numel())).indices
        suppressed = torch.zeros_like(valid)
    else:
        order = nms(_apart(boxes.float(), labels), scores, nms_thr)
        suppressed = valid.clone().index_fill_(0, order, False)
        order = order[:num]
    kept = torch.zeros_like(valid).index_fill_(0, order, True) & valid
    return MiningResult(kept[None], valid[None], suppressed[None])


def _mine_batch(losses: Tensor, valid: Tensor, boxes: Tensor, num: Tensor,
                most: int, nms_thr: float,
                labels: Optional[Tensor]) -> MiningResult:
    """:func:`mine_hard_examples` of a batch without a positive quota.

    Each pass takes the loss-sorted prefix of every image (``topk``), runs
    one NMS call over the prefixes of as many images as
    :data:`NMS_CHUNK` boxes allow, shifted apart by image and label, and
    keeps the first ``num`` survivors of each prefix (it is sorted: a
    cumulative count, no second top-k). The candidates that may not be
    mined take part with a loss of ``-inf``: greedy NMS visits them last,
    so they suppress none of the others, and they are never kept.

    Args:
        losses, valid, boxes, labels: See :func:`mine_hard_examples`.
        num (Tensor[B]): How many to keep in each image.
        most (int): The largest of ``num``.
        nms_thr (float): IoU threshold of the loss-based NMS.

    Returns:
        MiningResult: Masks of shape Tensor[B, N], made by one scatter.
    """
    total = losses.size(1)
    if total == 0:
        return MiningResult(valid, valid, valid)
    scores = losses.float().masked_fill(~valid, float('-inf'))
    prefix = min(total, max(_MIN_NMS_PREFIX, 4 * most))
    while True:
        top_scores, top_idx = scores.topk(prefix, dim=1)
        examined = top_scores != float('-inf')
        survive = _prefix_nms(top_scores, top_idx, examined, boxes, labels,
                              nms_thr)
        if prefix == total or _prefix_settles(survive, examined, num):
            break
        prefix = min(total, 2 * prefix)
    kept = survive & (survive.cumsum(1) <= num[:, None])
    masks = torch.stack([kept, examined, examined ^ survive])
    full = valid.new_zeros((3, ) + valid.shape).scatter_(
        2, top_idx.expand_as(masks), masks)
    return MiningResult(*full)


def _prefix_nms(scores: Tensor, order: Tensor, examined: Tensor, boxes: Tensor,
                labels: Optional[Tensor], iou_thr: float) -> Tensor:
    """NMS survivors of the loss-sorted prefixes of a batch.

    Args:
        scores (Tensor[B, P]): Each image's ``P`` highest scores, sorted.
        order (Tensor[B, P]): Their candidates' indices.
        examined (Tensor[B, P]): The prefix entries that take part.
        boxes (Tensor[B, N, 4]): All candidate boxes.
        labels (Tensor[B, N], optional): Labels for NMS per label.
        iou_thr (float): IoU threshold.

    Returns:
        Tensor[B, P]: Bool mask of the examined entries that survive.
    """
    num_imgs, prefix = scores.shape
    top_boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4)).float()
    top_labels = None if labels is None else labels.gather(1, order)
    if prefix > NMS_CHUNK:
        return loss_nms(top_boxes, scores, examined, iou_thr, top_labels,
                        NMS_CHUNK)
    survive = torch.zeros_like(examined)
    per_call = NMS_CHUNK // prefix
    for start in range(0, num_imgs, per_call):
        part = slice(start, start + per_call)
        keep = nms(
            _images_apart(top_boxes[part],
                          None if top_labels is None else top_labels[part]),
            scores[part].flatten(), iou_thr)
        survive[part].view(-1).index_fill_(0, keep, True)
    return survive & examined


def _images_apart(boxes: Tensor, labels: Optional[Tensor]) -> Tensor:
    """``boxes`` (Tensor[b, P, 4]) as Tensor[b * P, 4], shifted along x by
    image and along y by label (when given), by twice the span of the
    coordinates a step, so that boxes of different images or labels never
    overlap (:func:`_apart` with images too)."""
    low, high = boxes.aminmax()
    image = _image_steps(len(boxes), boxes.device)
    if labels is None:
        steps = image[..., None]
    else:
        image = image.expand_as(labels)
        steps = torch.stack([image, labels, image, labels], -1)
    return torch.addcmul(boxes, steps, high - low, value=2).flatten(0, 1)


@lru_cache(maxsize=None)
def _image_steps(num_imgs: int, device: torch.device) -> Tensor:
    """``0, ..., num_imgs - 1`` as Tensor[num_imgs, 1] (a constant)."""
    return torch.arange(num_imgs, device=device)[:, None]


def _prefix_settles(survive: Tensor, examined: Tensor, num: Tensor) -> bool:
    """Whether every image's prefix holds all its examined candidates or
    at least ``num`` survivors (one host read)."""
    covered = ~examined[:, -1]
    return bool((covered | (survive.sum(1) >= num)).all())


def _apart(boxes: Tensor, labels: Optional[Tensor]) -> Tensor:
    """``boxes`` (Tensor[N, 4]) shifted by label so that boxes of
    different labels never overlap (NMS per label in one call): by twice
    the span of the coordinates a label, which leaves a gap of one span
    between the boxes of consecutive labels (none overlap unless all the
    boxes are one point, which overlaps nothing)."""
    if labels is None or boxes.numel() == 0:
        return boxes
    low, high = boxes.aminmax()
    return torch.addcmul(boxes, labels[:, None], high - low, value=2)


def _prefix_suffices(survive: Tensor, is_pos: Tensor, top_valid: Tensor,
                     num: Tensor, pos_fraction: Optional[float],
                     valid_pos: Tensor) -> bool:
    """Whether the NMS survivors of a loss-sorted prefix fix the selection.

    An image is settled when its prefix holds all its valid candidates, or
    enough survivors of each kind that no candidate beyond the prefix could
    be selected; with a positive quota, the positives are settled too when
    the prefix holds every valid positive of the image (a few positives
    among thousands of anchors must not force an NMS over all of them).

    Args:
        survive (Tensor[B, P]): NMS survivors of the prefix.
        is_pos (Tensor[B, P]): Positives of the prefix.
        top_valid (Tensor[B, P]): Valid candidates of the prefix.
        num (Tensor[B]): Examples to keep per image.
        pos_fraction (float, optional): The positive quota.
        valid_pos (Tensor[B, N]): Valid positives of all candidates.
    """
    covered = ~top_valid[:, -1]
    if pos_fraction is None:
        enough = survive.sum(1) >= num
    else:
        need_pos = (num * pos_fraction).floor().long()
        pos_covered = (is_pos & top_valid).sum(1) == valid_pos.sum(1)
        enough = (((survive & is_pos).sum(1) >= need_pos) | pos_covered) & (
            (survive & ~is_pos).sum(1) >= num)
    return bool((covered | enough).all())


def _row_topk_mask(scores: Tensor, k: Tensor, k_max: int) -> Tensor:
    """Bool mask of the ``k[b]`` finite highest scores of each row.

    Args:
        scores (Tensor[B, N]): Scores, ``-inf`` where not eligible.
        k (Tensor[B]): How many to take in each row.
        k_max (int): An upper bound of ``k``, known on the host.

    Returns:
        Tensor[B, N]: The selection mask.
    """
    mask = torch.zeros_like(scores, dtype=torch.bool)
    k_max = min(k_max, scores.size(1))
    if k_max <= 0:
        return mask
    top_scores, top_idx = scores.topk(k_max, dim=1)
    rank = torch.arange(k_max, device=scores.device)
    take = (rank[None] < k[:, None]) & (top_scores > float('-inf'))
    return mask.scatter_(1, top_idx, take)


def _budget(num: Union[int, Sequence[int], Tensor],
            losses: Tensor,
            valid: Optional[Tensor] = None) -> Tuple[Tensor, int]:
    """``num`` per image and its largest value, in at most one read of the
    device (none when ``num`` is known on the host and ``valid`` is not
    given).

    With ``valid``, also raises when a candidate that may be mined has a
    NaN or infinite loss (the same read carries the count).

    Args:
        num (int | Sequence[int] | Tensor[B]): How many to keep in each
            image.
        losses (Tensor[B, N]): Per-candidate loss.
        valid (Tensor[B, N], optional): Candidates whose loss must be
            finite.

    Returns:
        tuple[Tensor[B], int]: ``num`` as int64 on the device of
        ``losses``, and its maximum.
    """
    on_host = not torch.is_tensor(num)
    per_image = torch.as_tensor(
        num, device=losses.device).long().expand(losses.size(0))
    checks = [] if valid is None else [(valid & ~torch.isfinite(losses)).sum()]
    if not on_host:
        checks.append(per_image.max())
    values = torch.stack(checks).tolist() if checks else []
    if not on_host:
        most = values.pop()
    else:
        most = max(num) if isinstance(num, Sequence) else int(num)
    if values and values[0]:
        raise FloatingPointError(
            f'OHEM: {values[0]} candidate(s) have a non-finite per-example '
            'loss (the head produced NaN/inf scores or box deltas); '
            'refusing to mine from them.')
    return per_image, most
