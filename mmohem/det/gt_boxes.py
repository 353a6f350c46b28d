"""Degenerate ground-truth boxes: found on the device, reported by name,
skipped.

A box of zero or negative width or height, or with a NaN/inf coordinate,
has no delta target (``log`` of its width is ``-inf`` or NaN), and mmdet's
``MaxIoUAssigner`` with ``min_pos_iou=0`` (RetinaNet's) matches every anchor
of zero IoU to it, so one such box makes every anchor of its image a
positive with a non-finite target. mmdet's ``CocoDataset`` drops boxes under
one pixel when it loads the annotations; other datasets and geometric
transforms can still produce them, which ``FilterAnnotations`` in the
pipeline removes. OHEM skips them the same way, with a warning: the image
trains as if they were not annotated.
"""
import logging
from typing import List, Sequence, Tuple

import torch
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList
from mmengine.logging import print_log
from torch import Tensor

FILTER_HINT = ("add dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1)) "
               'to the training pipeline, after the transforms that move '
               'boxes')


def degenerate_gt(bboxes: Tensor) -> Tensor:
    """Which boxes have a width or height <= 0 or a non-finite coordinate.

    Args:
        bboxes (Tensor[K, 4]): Boxes ``(x1, y1, x2, y2)``.

    Returns:
        Tensor[K]: Bool, True for a degenerate box. No host read.
    """
    sides = bboxes[:, 2:] - bboxes[:, :2]
    return ~((sides > 0) & (sides < float('inf'))).all(1)


def image_name(img_meta: dict, index: int) -> str:
    """How a warning names an image: its ``img_path`` when the meta
    information has one, else its index in the batch."""
    path = img_meta.get('img_path')
    return repr(path) if path else f'{index} of the batch'


def warn_degenerate_gt(owner: str,
                       found: Sequence[Tuple[str, int, List[float]]]) -> None:
    """Warn (mmengine's logger) that degenerate boxes were skipped.

    Args:
        owner (str): Names the miner, e.g. ``'mmohem.OHEMRetinaHead'``.
        found (list[tuple]): Per box, the image's name
            (:func:`image_name`), the box's index among the image's ground
            truth and its coordinates.
    """
    boxes = '; '.join(f'image {image}: box {index} {coords}'
                      for image, index, coords in found)
    print_log(
        f'{owner}: skipped {len(found)} degenerate ground-truth box(es) '
        '(width or height <= 0, or a non-finite coordinate; their box '
        f'targets would be NaN/inf): {boxes}. Their images train as if '
        f'they were not annotated. To drop them upstream, {FILTER_HINT}.',
        logger='current',
        level=logging.WARNING)


def drop_degenerate_gt(batch_gt_instances: InstanceList,
                       batch_img_metas: List[dict], degenerate: Tensor,
                       owner: str) -> InstanceList:
    """The ground truth of a batch without its degenerate boxes, warned of.

    Meant for the rare batch that has some: it reads the boxes and
    ``degenerate`` back to the host, in one read.

    Args:
        batch_gt_instances (list[InstanceData]): Per image, ``bboxes``
            (Tensor[K_i, 4] or a box type) and ``labels``.
        batch_img_metas (list[dict]): Per image meta information.
        degenerate (Tensor[sum K_i]): Bool, :func:`degenerate_gt` of the
            images' boxes concatenated.
        owner (str): Names the miner in the warning.

    Returns:
        list[InstanceData]: Per image, the instances without the
        degenerate boxes (the given object where it had none).
    """
    boxes = torch.cat([get_box_tensor(gt.bboxes) for gt in batch_gt_instances])
    rows = iter(
        torch.cat([boxes.float(), degenerate[:, None].float()], 1).tolist())
    kept, found = [], []
    for index, (gt,
                meta) in enumerate(zip(batch_gt_instances, batch_img_metas)):
        flags = [next(rows) for _ in range(len(gt))]
        bad = [i for i, row in enumerate(flags) if row[4]]
        found += [(image_name(meta, index), i, flags[i][:4]) for i in bad]
        good = [i for i, row in enumerate(flags) if not row[4]]
        kept.append(
            gt[boxes.new_tensor(good, dtype=torch.long)] if bad else gt)
    warn_degenerate_gt(owner, found)
    return kept
