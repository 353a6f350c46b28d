"""Launched operations and host reads of one dense-head loss step, mmohem's
OHEM head against mmdet's own on the same inputs (CPU count).

Both steps share ``get_anchors`` and ``get_targets`` (mmdet's, most of
either count). Beyond them, the OHEM step is its head plumbing (ground-truth
check, level flattening, per-anchor losses, weighting) and the mining call
(``OHEMSampler.mine``). SSD's budget is its peer's count: OHEM launches no
more than SSD's fixed 3:1 mining (473 against 476 operations when it was
set) and reads the device as often. RetinaNet's is the ratio measured when
it was set, rounded up a little: on CPU, mmdet's focal loss runs as a dozen
operations where CUDA runs one mmcv kernel, so its upstream count is higher
here than on a GPU.
"""
import pytest

from mmohem.testing.dense_cases import retina_case, ssd_case
from mmohem.testing.launches import count_launches

# case -> (ops budget as a ratio to upstream's, host reads over upstream's)
BUDGETS = {
    'SSD300, 2 x 8732 anchors': (ssd_case, 1.0, 0),
    'RetinaNet 320x320, 2 x 19206 anchors': (retina_case, 0.85, 0),
}


@pytest.mark.parametrize('name', list(BUDGETS))
def test_ohem_loss_step_launches_within_budget(name):
    case, ops_ratio, extra_reads = BUDGETS[name]
    ours, upstream = (count_launches(step) for step in case())
    assert ours['ops'] <= ops_ratio * upstream['ops'], (ours['by_op'],
                                                        upstream['by_op'])
    assert ours['host_reads'] <= upstream['host_reads'] + extra_reads, (
        ours['reads'], upstream['reads'])


@pytest.mark.parametrize('case, anchors', [(ssd_case, 8732),
                                           (retina_case, 19206)])
def test_cases_are_full_size_batches_of_two(case, anchors):
    ours, upstream = case(gts=3)
    assert ours.inputs is not upstream.inputs
    assert all(a is b for a, b in zip(ours.inputs, upstream.inputs))
    cls_scores, _, batch_gt, _ = ours.inputs
    channels = ours.head.cls_out_channels
    assert sum(s[0].numel() for s in cls_scores) == anchors * channels
    assert [len(gt) for gt in batch_gt] == [3, 3]
    losses = ours()
    assert len(losses['loss_cls']) == len(losses['loss_bbox']) == 2
