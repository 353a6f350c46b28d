"""Distractor metrics on hand-made cases with known counts."""
import json

import numpy as np
import pytest
import torch

from mmohem.demo.generate import mask_to_rle
from mmohem.evaluation import (DistractorFPMetric, DistractorPixelMetric,
                               count_distractor_hits)


def _write_coco(path, masks_per_image):
    """A distractor COCO file: image ``k`` is ``00000k.png`` with the
    given bool masks."""
    images, anns = [], []
    for index, masks in enumerate(masks_per_image):
        height, width = masks[0].shape if masks else (16, 16)
        images.append(
            dict(
                id=index + 1,
                file_name=f'{index:06d}.png',
                height=height,
                width=width))
        for mask in masks:
            ys, xs = np.nonzero(mask)
            box = [
                float(xs.min()),
                float(ys.min()),
                float(xs.max() + 1 - xs.min()),
                float(ys.max() + 1 - ys.min())
            ]
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=index + 1,
                    category_id=1,
                    bbox=box,
                    area=float(mask.sum()),
                    iscrowd=0,
                    segmentation=mask_to_rle(mask)))
    with open(path, 'w') as f:
        json.dump(
            dict(
                images=images,
                annotations=anns,
                categories=[dict(id=1, name='ring')]), f)
    return str(path)


def _square(top, left, size, shape=(32, 32)):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_count_distractor_hits_by_score_and_iou():
    distractors = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]])
    boxes = torch.tensor([
        [0., 0., 10., 10.],  # on the first, confident: counted
        [1., 1., 10., 10.],  # IoU 0.81 with the first, confident: counted
        [20., 20., 30., 30.],  # on the second but score 0.2: not counted
        [0., 0., 10., 25.],  # IoU 0.4 with the first: not counted
    ])
    scores = torch.tensor([0.9, 0.3, 0.2, 0.9])
    assert count_distractor_hits(boxes, scores, distractors, 0.3, 0.5) == 2
    assert count_distractor_hits(boxes, scores, distractors, 0.1, 0.5) == 3
    assert count_distractor_hits(boxes, scores, distractors[:0], 0.3, 0.5) == 0


def test_fp_metric_counts_per_image(tmp_path):
    ann_file = _write_coco(tmp_path / 'd.json',
                           [[_square(0, 0, 10)], [], [_square(4, 4, 8)]])
    metric = DistractorFPMetric(ann_file)

    def sample(index, boxes, scores):
        return dict(
            img_path=f'/any/where/{index:06d}.png',
            pred_instances=dict(
                bboxes=torch.tensor(boxes).view(-1, 4),
                scores=torch.tensor(scores)))

    metric.process({}, [
        sample(0, [[0., 0., 10., 10.], [0., 0., 9., 10.]], [0.8, 0.5]),
        sample(1, [[0., 0., 10., 10.]], [0.9]),
        sample(2, [[4., 4., 12., 12.]], [0.1]),
    ])
    assert metric.evaluate(3) == {'distractor/fp_per_img': 2 / 3}


def test_pixel_metric_pools_the_claimed_pixels(tmp_path):
    ann_file = _write_coco(tmp_path / 'd.json',
                           [[_square(0, 0, 4,
                                     (8, 8))], [_square(4, 4, 2, (8, 8))]])
    metric = DistractorPixelMetric(ann_file, background=0)
    first = torch.zeros(1, 8, 8, dtype=torch.long)
    first[0, 0, :4] = 2  # 4 of the 16 distractor pixels claimed
    second = torch.ones(1, 8, 8, dtype=torch.long)  # all 4 claimed
    metric.process({}, [
        dict(img_path='000000.png', pred_sem_seg=dict(data=first)),
        dict(img_path='000001.png', pred_sem_seg=dict(data=second)),
    ])
    assert metric.evaluate(2) == {'distractor/pixel_fp': 100 * 8 / 20}


def test_bad_input_names_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match='ann_file'):
        DistractorFPMetric(str(tmp_path / 'missing.json'))
    ann_file = _write_coco(tmp_path / 'd.json', [[_square(0, 0, 4)]])
    with pytest.raises(ValueError, match='score_thr'):
        DistractorFPMetric(ann_file, score_thr=1.5)
    with pytest.raises(ValueError, match='iou_thr'):
        DistractorFPMetric(ann_file, iou_thr=-0.1)
    metric = DistractorFPMetric(ann_file)
    with pytest.raises(KeyError, match='img_path'):
        metric.process({}, [
            dict(
                img_path='other.png',
                pred_instances=dict(
                    bboxes=torch.zeros(0, 4), scores=torch.zeros(0)))
        ])
