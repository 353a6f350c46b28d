"""Degenerate ground-truth boxes: detection, the warning, the dropping."""
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

import mmohem.det.gt_boxes as gt_module
from mmohem.det.gt_boxes import (degenerate_gt, drop_degenerate_gt, image_name,
                                 warn_degenerate_gt)

INF, NAN = float('inf'), float('nan')


@pytest.fixture
def warnings(monkeypatch):
    """The messages and levels of the module's ``print_log`` calls."""
    logged = []
    monkeypatch.setattr(
        gt_module, 'print_log', lambda msg, logger, level: logged.append(
            (msg, logger, level)))
    return logged


def test_degenerate_boxes_are_found():
    boxes = torch.tensor([
        [0., 0., 10., 10.],  # fine
        [5., 5., 5., 20.],  # zero width
        [5., 5., 20., 5.],  # zero height
        [50., 50., 20., 20.],  # inverted
        [50., 5., 20., 20.],  # inverted in x only
        [0., 0., NAN, 10.],
        [-INF, 0., 10., 10.],
        [0., 0., INF, 10.],
        [0., 0., 0.5, 0.5],  # small, not degenerate
    ])
    assert degenerate_gt(boxes).tolist() == [
        False, True, True, True, True, True, True, True, False
    ]
    assert degenerate_gt(torch.zeros(0, 4)).shape == (0, )


def test_image_is_named_by_path_or_index():
    assert image_name(dict(img_path='data/a.jpg'), 3) == "'data/a.jpg'"
    assert image_name(dict(), 3) == '3 of the batch'
    assert image_name(dict(img_path=None), 0) == '0 of the batch'


def test_warning_names_each_box_and_the_fix(warnings):
    warn_degenerate_gt('mmohem.OHEMRetinaHead',
                       [("'a.jpg'", 2, [5., 5., 5., 20.]),
                        ('1 of the batch', 0, [50., 50., 20., 20.])])
    (msg, logger, level), = warnings
    assert logger == 'current' and level == 30  # logging.WARNING
    assert msg.startswith('mmohem.OHEMRetinaHead: skipped 2 degenerate')
    assert "image 'a.jpg': box 2 [5.0, 5.0, 5.0, 20.0]" in msg
    assert 'image 1 of the batch: box 0 [50.0, 50.0, 20.0, 20.0]' in msg
    assert "dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1))" in msg


def test_dropping_keeps_the_other_boxes_and_untouched_images(warnings):
    good = InstanceData(
        bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([3]))
    mixed = InstanceData(
        bboxes=HorizontalBoxes(
            torch.tensor([[1., 1., 9., 9.], [5., 5., 5., 20.],
                          [2., 2., 30., 30.], [50., 50., 20., 20.]])),
        labels=torch.tensor([0, 1, 2, 4]))
    batch = [
        good,
        InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long()),
        mixed
    ]
    boxes = torch.cat([good.bboxes, batch[1].bboxes, mixed.bboxes.tensor])
    metas = [dict(img_path='a.jpg'), dict(), dict()]
    kept = drop_degenerate_gt(batch, metas, degenerate_gt(boxes), 'owner')
    assert kept[0] is good and kept[1] is batch[1]
    assert kept[2].labels.tolist() == [0, 2]
    assert isinstance(kept[2].bboxes, HorizontalBoxes)
    assert kept[2].bboxes.tensor.tolist() == [[1., 1., 9., 9.],
                                              [2., 2., 30., 30.]]
    msg = warnings[0][0]
    assert 'skipped 2 degenerate' in msg
    assert 'image 2 of the batch: box 1 [5.0, 5.0, 5.0, 20.0]' in msg
    assert 'image 2 of the batch: box 3 [50.0, 50.0, 20.0, 20.0]' in msg
