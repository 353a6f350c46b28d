import pytest
import torch

from mmohem.mining import loss_nms, mine_hard_examples, select_top_losses


def _random_case(num_imgs, num_cands, seed):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_imgs, num_cands, 2, generator=gen) * 80
    wh = torch.rand(num_imgs, num_cands, 2, generator=gen) * 30 + 4
    boxes = torch.cat([xy, xy + wh], dim=-1)
    losses = torch.rand(num_imgs, num_cands, generator=gen)
    labels = torch.randint(0, 3, (num_imgs, num_cands), generator=gen)
    is_pos = labels < 2
    valid = torch.rand(num_imgs, num_cands, generator=gen) > 0.1
    return losses, valid, is_pos, boxes, labels


def test_overlapping_hard_boxes_leave_the_harder_one():
    boxes = torch.tensor([[[0., 0., 10., 10.], [0., 0., 10., 11.],
                           [50., 50., 60., 60.]]])
    losses = torch.tensor([[2.0, 3.0, 1.0]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    result = mine_hard_examples(losses, valid, ~valid, boxes, num=3)
    assert result.kept.tolist() == [[False, True, True]]
    assert result.suppressed.tolist() == [[True, False, False]]


def test_keeps_the_highest_losses_in_order():
    boxes = torch.arange(6.)[None, :, None] * 20 + torch.tensor(
        [0., 0., 10., 10.])
    losses = torch.tensor([[0.1, 0.9, 0.3, 0.7, 0.5, 0.2]])
    valid = torch.ones(1, 6, dtype=torch.bool)
    kept = mine_hard_examples(losses, valid, ~valid, boxes, num=3).kept
    assert kept[0].nonzero().flatten().tolist() == [1, 3, 4]


def test_per_label_nms_keeps_overlaps_of_different_labels():
    boxes = torch.tensor([[[0., 0., 10., 10.], [0., 0., 10., 10.]]])
    losses = torch.tensor([[1.0, 2.0]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    labels = torch.tensor([[0, 1]])
    per_label = mine_hard_examples(
        losses, valid, ~valid, boxes, 2, labels=labels).kept
    agnostic = mine_hard_examples(losses, valid, ~valid, boxes, 2).kept
    assert per_label.tolist() == [[True, True]]
    assert agnostic.tolist() == [[False, True]]


def test_num_caps_each_image():
    losses, valid, is_pos, boxes, labels = _random_case(3, 200, seed=0)
    kept = mine_hard_examples(
        losses, valid, is_pos, boxes, num=7, nms_thr=None).kept
    assert kept.sum(1).tolist() == [7, 7, 7]


def test_fewer_candidates_than_num_keeps_all_survivors():
    losses, valid, is_pos, boxes, labels = _random_case(2, 10, seed=1)
    result = mine_hard_examples(losses, valid, is_pos, boxes, num=64)
    assert torch.equal(result.kept, valid & ~result.suppressed)


@pytest.mark.parametrize('num_cands', [0, 5])
def test_empty_input_keeps_nothing(num_cands):
    losses = torch.rand(2, num_cands)
    valid = torch.zeros(2, num_cands, dtype=torch.bool)
    boxes = torch.rand(2, num_cands, 4)
    result = mine_hard_examples(losses, valid, valid, boxes, num=4)
    assert not result.kept.any()
    assert result.kept.shape == (2, num_cands)


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('per_label', [True, False])
@pytest.mark.parametrize('thr', [0.7, 0.3, None])
def test_agrees_with_plain_reference(seed, per_label, thr, reference_mining):
    losses, valid, is_pos, boxes, labels = _random_case(3, 300, seed)
    labels = labels if per_label else None
    result = mine_hard_examples(losses, valid, is_pos, boxes, 16, thr, labels)
    expected = reference_mining(losses, valid, is_pos, boxes, labels, 16, thr)
    assert torch.equal(result.kept, expected)


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('neg_pos_ub', [-1, 1.5])
def test_quota_agrees_with_plain_reference(seed, neg_pos_ub, reference_mining):
    losses, valid, is_pos, boxes, labels = _random_case(2, 300, seed)
    result = mine_hard_examples(
        losses,
        valid,
        is_pos,
        boxes,
        40,
        0.5,
        labels,
        pos_fraction=0.25,
        neg_pos_ub=neg_pos_ub)
    expected = reference_mining(losses, valid, is_pos, boxes, labels, 40, 0.5,
                                0.25, neg_pos_ub)
    assert torch.equal(result.kept, expected)


@pytest.mark.parametrize('pos_rank', ['top', 'anywhere'])
def test_quota_with_few_positives_examines_a_prefix(pos_rank,
                                                    reference_mining):
    """An SSD-like image: a handful of positives among many anchors. When
    the prefix holds every positive, the NMS never sees the easy tail, and
    the selection still equals the plain reference."""
    losses, valid, _, boxes, labels = _random_case(2, 600, seed=5)
    valid[:] = True
    is_pos = torch.zeros_like(valid)
    is_pos[:, :5] = True
    labels = torch.where(is_pos, labels.clamp(max=1), 2)
    if pos_rank == 'top':
        losses[:, :5] += 10
    result = mine_hard_examples(
        losses, valid, is_pos, boxes, 64, 0.7, labels, pos_fraction=0.25)
    expected = reference_mining(losses, valid, is_pos, boxes, labels, 64, 0.7,
                                0.25)
    assert torch.equal(result.kept, expected)
    if pos_rank == 'top':
        assert (result.examined.sum(1) < valid.sum(1)).all()


def test_per_image_num():
    losses, valid, is_pos, boxes, labels = _random_case(2, 50, seed=3)
    kept = mine_hard_examples(losses, valid, is_pos, boxes,
                              torch.tensor([3, 9]), None).kept
    assert kept.sum(1).tolist() == [3, 9]


def test_loss_nms_groups_never_interact():
    boxes = torch.tensor([[0., 0., 10., 10.]]).expand(2, 1, 4)
    survive = loss_nms(boxes, torch.ones(2, 1),
                       torch.ones(2, 1, dtype=torch.bool), 0.5)
    assert survive.all()


def test_select_top_losses_quota_takes_hardest_positives_first():
    losses = torch.tensor([[5., 4., 3., 2., 1.]])
    is_pos = torch.tensor([[False, False, False, True, True]])
    eligible = torch.ones(1, 5, dtype=torch.bool)
    kept = select_top_losses(losses, eligible, is_pos, 4, pos_fraction=0.5)
    assert kept.tolist() == [[True, True, False, True, True]]


def test_non_finite_loss_is_an_error():
    losses = torch.tensor([[1.0, float('nan')]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(FloatingPointError, match='non-finite'):
        mine_hard_examples(losses, valid, valid, torch.rand(1, 2, 4), 1)


def test_degenerate_boxes_neither_crash_nor_suppress():
    boxes = torch.tensor([[[5., 5., 5., 5.], [5., 5., 5., 5.],
                           [30., 30., 10., 10.], [0., 0., 8., 8.]]])
    losses = torch.tensor([[4., 3., 2., 1.]])
    valid = torch.ones(1, 4, dtype=torch.bool)
    result = mine_hard_examples(losses, valid, ~valid, boxes, num=4)
    assert result.kept.all()


def _nms_sizes(monkeypatch):
    """The number of boxes of each NMS call the mining makes from now."""
    import mmohem.mining.hard_examples as module
    sizes = []
    real_nms = module.nms

    def counted_nms(boxes, scores, iou_thr):
        sizes.append(len(boxes))
        return real_nms(boxes, scores, iou_thr)

    monkeypatch.setattr(module, 'nms', counted_nms)
    return sizes


@pytest.mark.parametrize('max_boxes', [1, 7, 64, 10**6])
@pytest.mark.parametrize('per_label', [True, False])
def test_loss_nms_in_bounded_chunks_is_one_call(max_boxes, per_label,
                                                monkeypatch):
    """Chunks of whole groups give the survivors of one call, and no call
    sees more than ``max_boxes`` boxes plus one group."""
    losses, valid, _, boxes, labels = _random_case(4, 120, seed=5)
    labels = labels if per_label else None
    whole = loss_nms(boxes, losses, valid, 0.5, labels)
    sizes = _nms_sizes(monkeypatch)
    chunked = loss_nms(boxes, losses, valid, 0.5, labels, max_boxes)
    assert torch.equal(chunked, whole)
    image = torch.arange(4)[:, None].expand_as(valid)
    group = image if labels is None else image * 3 + labels
    largest_group = int(torch.bincount(group[valid]).max())
    assert max(sizes) < max_boxes + largest_group
    assert sum(sizes) == int(valid.sum())
    assert len(sizes) > 1 or max_boxes >= valid.sum()


def test_loss_nms_chunks_agree_with_plain_reference(reference_mining):
    losses, valid, is_pos, boxes, labels = _random_case(3, 80, seed=6)
    survive = loss_nms(boxes, losses, valid, 0.4, labels, max_boxes=10)
    expected = reference_mining(losses, valid, is_pos, boxes, labels, 80, 0.4)
    assert torch.equal(survive, expected)


@pytest.mark.parametrize('chunk', [130, 50])
@pytest.mark.parametrize('per_label', [True, False])
def test_batch_prefixes_in_bounded_calls_agree_with_reference(
        chunk, per_label, monkeypatch, reference_mining):
    """A batch's loss-sorted prefixes (64 candidates here) go through NMS
    calls of at most ``NMS_CHUNK`` boxes, whole images each (2 images a
    call at 130); a prefix longer than that goes through the grouped,
    chunked loss_nms (50). Either way the reference's selection."""
    import mmohem.mining.hard_examples as module
    losses, valid, is_pos, boxes, labels = _random_case(3, 300, seed=7)
    labels = labels if per_label else None
    monkeypatch.setattr(module, 'NMS_CHUNK', chunk)
    sizes = _nms_sizes(monkeypatch)
    result = mine_hard_examples(losses, valid, is_pos, boxes, 8, 0.5, labels)
    expected = reference_mining(losses, valid, is_pos, boxes, labels, 8, 0.5)
    assert torch.equal(result.kept, expected)
    assert torch.equal(
        result.suppressed, result.examined & ~reference_mining(
            losses, result.examined, is_pos, boxes, labels, 300, 0.5))
    if chunk == 130:
        assert sizes == [128, 64]
    else:
        assert max(sizes) < chunk + 64 and len(sizes) >= 3
