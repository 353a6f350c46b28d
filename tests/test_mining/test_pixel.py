import math

import pytest
import torch
import torch.nn.functional as F

from mmohem.mining import (check_finite_logits, class_targets, hard_pixel_mask,
                           kept_count, mine_pixels)
from mmohem.mining import pixel as pixel_module
from mmohem.mining import (pixel_bce, pixel_cross_entropy, pixel_nll,
                           select_hard_pixels, top_loss_mask, valid_pixels)

IGNORE = 255


@pytest.fixture(params=['cpu', 'cuda'])
def path(request, monkeypatch):
    """Run the test on both implementations (the 'cuda' one on CPU
    tensors)."""
    monkeypatch.setattr(pixel_module, 'pixel_path',
                        lambda device: request.param)
    return request.param


def _batch(b=2, c=5, h=12, w=16, confident=0.0, ignore=0.15, seed=0):
    """Random logits, labels with ignored pixels; ``confident`` is the share
    of pixels whose true class gets a large boost (easy pixels)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (b, h, w), generator=gen)
    logits = torch.randn(b, c, h, w, generator=gen)
    boost = 8. * (torch.rand(b, 1, h, w, generator=gen) < confident)
    logits.scatter_add_(1, labels[:, None], boost)
    labels[torch.rand(b, h, w, generator=gen) < ignore] = IGNORE
    return logits, labels


def _losses(logits, labels):
    valid = valid_pixels(labels, IGNORE)
    return pixel_nll(logits, class_targets(labels, logits.size(1))), valid


def _reference(losses, valid, thresh, num_kept):
    """Plain rule: sort the valid losses, keep the hard ones, and the
    ``num_kept`` highest if fewer are hard."""
    order = losses[valid].argsort(descending=True)
    flat = valid.flatten().nonzero().squeeze(1)[order]
    keep = torch.zeros(valid.numel(), dtype=torch.bool)
    if thresh is not None:
        hard = flat[losses.flatten()[flat] > -math.log(thresh)]
        keep[hard] = True
    if int(keep.sum()) < num_kept:
        keep[flat[:num_kept]] = True
    return keep.view_as(valid)


@pytest.mark.parametrize(
    'budget', [None, 2 * 5 * 12 * 16 * 4, 2 * 5 * 16 * 4, 7 * 5 * 4, 1])
def test_pixel_nll_is_cross_entropy_of_the_clamped_labels(path, budget):
    """Every pixel is scored, an ignored one with its label clamped to the
    classes; the same in chunks of images or of (uneven) parts of one."""
    logits, labels = _batch(b=3)
    target = class_targets(labels, 5)
    assert target.dtype == torch.int64 and int(target.max()) == 4
    expected = F.cross_entropy(logits, target, reduction='none')
    nll = pixel_nll(logits, target, budget)
    assert nll.shape == labels.shape and nll.dtype == torch.float32
    assert torch.allclose(nll, expected, atol=1e-5)


def test_pixel_nll_temporary_stays_under_the_byte_budget(monkeypatch):
    """No log_softmax of the logits' size: with a budget of 3 rows of one
    image, 3-row chunks (float32), all in one reused buffer."""
    logits, labels = _batch(b=2, h=12)
    budget = 3 * 5 * 16 * 4
    buffers = []
    log_softmax = torch.log_softmax

    def recording(*args, **kwargs):
        out = log_softmax(*args, **kwargs)
        buffers.append((out.numel() * out.element_size(), out.data_ptr()))
        return out

    monkeypatch.setattr(torch, 'log_softmax', recording)
    nll = pixel_nll(logits.half(), class_targets(labels, 5), budget)
    assert [size for size, _ in buffers] == [budget] * 8
    assert len({address for _, address in buffers}) == 1
    expected = F.cross_entropy(
        logits.half().float(), class_targets(labels, 5), reduction='none')
    assert torch.allclose(nll, expected, atol=1e-5)


def test_default_budget_is_the_paths(path):
    assert pixel_module.chunk_bytes(torch.device('cpu')) == \
        pixel_module.CHUNK_BYTES[path]


def test_pixel_nll_half_logits_and_large_values_stay_finite(path):
    logits, labels = _batch()
    nll = pixel_nll(logits.half() * 1000, class_targets(labels, 5))
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    assert not nll.requires_grad


def test_pixel_cross_entropy_is_differentiable_float32():
    logits, labels = _batch()
    low = logits.half().requires_grad_()
    target = class_targets(labels, 5)
    losses = pixel_cross_entropy(low, target)
    assert losses.dtype == torch.float32
    assert torch.allclose(
        losses, F.cross_entropy(low.float(), target, reduction='none'))
    losses.sum().backward()
    assert torch.isfinite(low.grad).all()


def test_pixel_bce_is_the_hand_computed_binary_cross_entropy():
    """Logits 2, -1, 0, 30 with labels 1, 1, 0, 0: -log sigmoid(x) for
    foreground, -log(1 - sigmoid(x)) for background."""
    logits = torch.tensor([[[[2., -1.], [0., 30.]]]], requires_grad=True)
    target = torch.tensor([[[1, 1], [0, 0]]])
    expected = torch.tensor(
        [[[math.log(1 + math.exp(-2.)),
           math.log(1 + math.exp(1.))],
          [math.log(2.), 30. + math.log(1 + math.exp(-30.))]]])
    losses = pixel_bce(logits, target)
    assert losses.shape == (1, 2, 2) and losses.dtype == torch.float32
    assert torch.allclose(losses, expected)
    losses.sum().backward()
    sig = torch.sigmoid(logits.detach())
    assert torch.allclose(logits.grad, sig - target[:, None].float())


def test_valid_pixels_none_ignores_nothing():
    labels = torch.full((1, 2, 2), IGNORE)
    assert valid_pixels(labels, None).all()
    assert not valid_pixels(labels, IGNORE).any()


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
def test_check_finite_logits_names_the_tensor(value):
    logits, _ = _batch()
    logits[1, 2, 3, 4] = value
    with pytest.raises(FloatingPointError, match='my_logits'):
        check_finite_logits(logits, 'my_logits')


def test_check_finite_logits_accepts_finite_and_empty():
    check_finite_logits(_batch()[0], 'logits')
    check_finite_logits(torch.empty(0, 3, 4, 4), 'logits')


@pytest.mark.parametrize('confident', [0.0, 0.5, 0.95])
@pytest.mark.parametrize('thresh,num_kept', [(0.7, 1), (0.7, 60), (0.7, 300),
                                             (0.9, 200), (1.0, 10), (None, 1),
                                             (None, 137)])
def test_selection_matches_the_plain_rule(path, confident, thresh, num_kept):
    logits, labels = _batch(confident=confident)
    losses, valid = _losses(logits, labels)
    keep = select_hard_pixels(losses, valid, thresh, min_kept=num_kept)
    assert torch.equal(keep, _reference(losses, valid, thresh, num_kept))
    hard = int((valid & (losses > -math.log(thresh))).sum()) \
        if thresh is not None else 0
    assert int(keep.sum()) == max(hard, num_kept)
    mined = mine_pixels(logits, labels, thresh, min_kept=num_kept)
    assert torch.equal(mined.keep, keep)
    assert mined.num_kept == int(keep.sum())
    assert mined.num_valid == int(valid.sum())


def test_ignored_pixels_are_never_kept_even_when_hardest(path):
    logits, labels = _batch(confident=0.9)
    losses, valid = _losses(logits, labels)
    losses[~valid] = 1e6
    keep = select_hard_pixels(losses, valid, 0.7, min_kept=int(valid.sum()))
    assert torch.equal(keep, valid)
    keep = select_hard_pixels(losses, valid, None, min_kept=5)
    assert not (keep & ~valid).any() and int(keep.sum()) == 5


def test_ignored_pixels_of_highest_loss_are_not_mined(path):
    """Ignored pixels scored high by their clamped label stay out."""
    logits, labels = _batch(confident=1.0)
    logits[:, 4][labels == IGNORE] = -30.
    mined = mine_pixels(logits, labels, None, min_kept=7)
    assert mined.num_kept == 7 and int(mined.keep.sum()) == 7
    assert not (mined.keep & (labels == IGNORE)).any()


def test_min_kept_above_valid_keeps_every_valid_pixel(path):
    logits, labels = _batch(confident=1.0)
    losses, valid = _losses(logits, labels)
    for thresh in (0.7, None):
        keep = select_hard_pixels(losses, valid, thresh, min_kept=10**9)
        assert torch.equal(keep, valid)


def test_min_kept_ratio_is_a_share_of_the_valid_pixels(path):
    logits, labels = _batch(confident=1.0, ignore=0.25)
    losses, valid = _losses(logits, labels)
    keep = select_hard_pixels(losses, valid, 0.7, min_kept_ratio=1 / 16)
    assert int(keep.sum()) == int(valid.sum()) // 16
    assert torch.equal(keep,
                       _reference(losses, valid, 0.7,
                                  int(valid.sum()) // 16))


@pytest.mark.parametrize('thresh', [None, 0.7])
def test_min_kept_ratio_keeps_one_pixel_of_a_small_map(path, thresh):
    """Fewer than 16 valid pixels with min_kept_ratio=1/16 used to keep
    none (a zero loss): the hardest valid pixel is kept."""
    logits, labels = _batch(b=1, h=3, w=4, confident=1.0, ignore=0.0)
    labels[0, 0] = IGNORE
    mined = mine_pixels(logits, labels, thresh, min_kept_ratio=1 / 16)
    losses, valid = _losses(logits, labels)
    assert mined.num_valid == 8 and mined.num_kept == 1
    hardest = losses.where(valid, -1.).flatten().argmax()
    assert mined.keep.flatten().nonzero().flatten().tolist() == [hardest]


def test_kept_count_rules():
    assert kept_count(0, 0, 1 / 16) == 0
    assert kept_count(5, 0, 1 / 16) == 1
    assert kept_count(320, 0, 1 / 16) == 20
    assert kept_count(320, 100, 1 / 16) == 100


def test_min_kept_is_for_the_batch_not_per_image(path):
    logits, labels = _batch(b=2, confident=0.0, ignore=0.0)
    logits[1] = 0.
    logits[1].scatter_(0, labels[1][None], 20.)
    losses, valid = _losses(logits, labels)
    keep = select_hard_pixels(losses, valid, None, min_kept=50)
    assert int(keep[0].sum()) == 50 and not keep[1].any()


def test_all_ignored_keeps_nothing(path):
    logits, labels = _batch()
    labels[:] = IGNORE
    mined = mine_pixels(logits, labels, 0.7, min_kept=100)
    assert mined.keep.shape == labels.shape and not mined.keep.any()
    assert mined.num_valid == 0 and mined.num_kept == 0


def test_ignore_index_none_and_inside_the_classes(path):
    logits, labels = _batch(ignore=0.0)
    everything = mine_pixels(logits, labels, 1.0, ignore_index=None)
    assert everything.keep.all() and everything.num_valid == labels.numel()
    without_3 = mine_pixels(logits, labels, 1.0, ignore_index=3)
    assert torch.equal(without_3.keep, labels != 3)


def test_hard_pixel_mask_checks_logits_and_selects(path):
    logits, labels = _batch(confident=0.8)
    valid = valid_pixels(labels, IGNORE)
    losses = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=IGNORE)
    keep = hard_pixel_mask(logits, labels, 0.7, min_kept=40)
    assert torch.equal(keep, _reference(losses, valid, 0.7, 40))
    logits[0, 0, 0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='seg_logits'):
        hard_pixel_mask(logits, labels, name='seg_logits')


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_logits_of_an_ignored_pixel_are_an_error(path, value):
    """Their gradient would be NaN even though the pixel is ignored."""
    logits, labels = _batch()
    y, x = (labels[1] == IGNORE).nonzero()[0].tolist()
    logits[1, 2, y, x] = value
    with pytest.raises(FloatingPointError, match='my_logits.*non-finite'):
        mine_pixels(logits, labels, name='my_logits')


def test_finite_scores_that_overflow_the_loss_are_an_error(path):
    logits, labels = _batch(ignore=0.0)
    logits[0, :, 0, 0] = 3e38
    logits[0, labels[0, 0, 0], 0, 0] = -3e38
    with pytest.raises(FloatingPointError, match='non-finite'):
        mine_pixels(logits, labels)


def test_minus_inf_on_another_class_is_accepted(path):
    """Probability 0 of a wrong class: loss and gradient stay finite."""
    logits, labels = _batch(ignore=0.0)
    other = (labels[0, 0, 0] + 1) % 5
    logits[0, other, 0, 0] = -float('inf')
    keep = hard_pixel_mask(logits, labels, 1.0)
    assert keep.all()


@pytest.mark.parametrize('bad', [5, 33, -1])
def test_labels_outside_the_classes_are_an_error(path, bad):
    logits, labels = _batch()
    labels[0, 1, 1] = bad
    message = (rf'`gt_sem_seg` must hold class indices in \[0, 4\] or the '
               rf'ignore index 255; got 1 pixel\(s\) labelled from {bad} '
               rf'to {bad} \(label ids')
    with pytest.raises(ValueError, match=message):
        mine_pixels(logits, labels)


def _binary_batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (2, 10, 12), generator=gen)
    logits = torch.randn(2, 1, 10, 12, generator=gen) * 3
    labels[torch.rand(labels.shape, generator=gen) < 0.1] = IGNORE
    return logits, labels


@pytest.mark.parametrize('thresh,min_kept', [(0.7, 1), (0.7, 150), (0.95, 20),
                                             (None, 33)])
def test_sigmoid_mining_ranks_by_the_true_class_probability(
        path, thresh, min_kept):
    logits, labels = _binary_batch()
    valid = labels != IGNORE
    prob = torch.sigmoid(logits[:, 0])
    p_true = torch.where(labels == 1, prob, 1 - prob)
    reference = _reference(-p_true.log(), valid, thresh, min_kept)
    mined = mine_pixels(logits, labels, thresh, min_kept, sigmoid=True)
    assert torch.equal(mined.keep, reference)
    if thresh is not None:
        assert (mined.keep >= (valid & (p_true < thresh))).all()


def test_sigmoid_mining_checks_channels_and_labels(path):
    logits, labels = _binary_batch()
    with pytest.raises(ValueError, match='one channel.*got 2 channels'):
        mine_pixels(logits.expand(-1, 2, -1, -1), labels, sigmoid=True)
    labels[0, 0, 0] = 2
    message = (r'class indices in \[0, 1\] .* \(a single-channel sigmoid '
               r'head \(out_channels=1\) takes 0 for background and 1 for '
               r'foreground\)')
    with pytest.raises(ValueError, match=message):
        mine_pixels(logits, labels, sigmoid=True)


@pytest.mark.parametrize('seed', range(6))
def test_top_loss_mask_is_an_exact_top_k(seed):
    gen = torch.Generator().manual_seed(seed)
    scale = 10.**(seed - 3)
    losses = torch.randn(3, 17, 19, generator=gen) * scale
    if seed % 2:
        losses = torch.randint(0, 4, losses.shape, generator=gen).float()
        losses[0] = -0.
    valid = torch.rand(losses.shape, generator=gen) < 0.8
    for num in (1, 7, int(valid.sum()) // 2, int(valid.sum())):
        keep = top_loss_mask(losses, valid, num)
        assert int(keep.sum()) == num and not (keep & ~valid).any()
        rest = valid & ~keep
        if rest.any():
            assert losses[keep].min() >= losses[rest].max()
