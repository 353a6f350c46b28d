"""The unlabelled distractors of an image and the predictions that fall on
them: plain functions behind the distractor metrics.

The side annotation is a COCO file (the demo generator writes
``annotations/<split>_distractors.json``) whose boxes and masks are the
visible parts of the distractors; images are matched to predictions by
file name.
"""
import os.path as osp
from collections import defaultdict
from typing import Dict, List

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torch import Tensor
from torchvision.ops import box_iou


class Distractors:
    """Boxes and masks of the distractors of each image of a COCO file.

    Args:
        ann_file (str): COCO file of the distractors.
    """

    def __init__(self, ann_file: str) -> None:
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'ann_file: no distractor annotation at {ann_file!r} (the '
                'demo generator writes annotations/<split>_distractors.json)')
        coco = COCO(ann_file)
        self._anns: Dict[str, List[dict]] = defaultdict(list)
        names = {img['id']: img['file_name'] for img in coco.dataset['images']}
        self._names = set(names.values())
        for ann in coco.dataset['annotations']:
            self._anns[names[ann['image_id']]].append(ann)

    def _lookup(self, img_path: str) -> List[dict]:
        name = osp.basename(img_path)
        if name not in self._names:
            raise KeyError(
                f'img_path: {name!r} is not an image of the distractor '
                'annotation; evaluate the split it was written for.')
        return self._anns[name]

    def boxes(self, img_path: str) -> Tensor:
        """Distractor boxes of an image, Tensor[K, 4] (x1, y1, x2, y2)."""
        boxes = [ann['bbox'] for ann in self._lookup(img_path)]
        xywh = torch.tensor(boxes, dtype=torch.float32).view(-1, 4)
        return torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)

    def mask(self, img_path: str, shape: tuple) -> np.ndarray:
        """Union of the distractor masks of an image, bool ``[H, W]``."""
        union = np.zeros(shape, bool)
        for ann in self._lookup(img_path):
            rle = mask_utils.frPyObjects(ann['segmentation'], *shape)
            union |= mask_utils.decode(rle).astype(bool)
        return union


def count_distractor_hits(boxes: Tensor, scores: Tensor,
                          distractor_boxes: Tensor, score_thr: float,
                          iou_thr: float) -> int:
    """Detections scored at least ``score_thr`` that overlap a distractor
    at IoU at least ``iou_thr``.

    Args:
        boxes (Tensor[N, 4]): Detected boxes (x1, y1, x2, y2).
        scores (Tensor[N]): Their scores.
        distractor_boxes (Tensor[K, 4]): The image's distractors.
        score_thr (float): Least score of a counted detection.
        iou_thr (float): Least IoU with some distractor.

    Returns:
        int: The count.
    """
    confident = boxes[scores >= score_thr].float()
    if confident.numel() == 0 or distractor_boxes.numel() == 0:
        return 0
    ious = box_iou(confident, distractor_boxes.to(confident))
    return int((ious.max(1).values >= iou_thr).sum())


def distractor_pixels_claimed(pred: np.ndarray, distractor: np.ndarray,
                              background: int) -> int:
    """Distractor pixels that a label map assigns to a class.

    Args:
        pred (np.ndarray): Int ``[H, W]`` predicted labels.
        distractor (np.ndarray): Bool ``[H, W]`` distractor pixels.
        background (int): The background label.

    Returns:
        int: Distractor pixels predicted as another label than background.
    """
    return int(np.count_nonzero(distractor & (pred != background)))
