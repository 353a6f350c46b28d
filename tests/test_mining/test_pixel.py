import math

import pytest
import torch
import torch.nn.functional as F

from mmohem.mining import (check_finite_logits, hard_pixel_mask, pixel_nll,
                           select_hard_pixels, top_loss_mask, valid_pixels)

IGNORE = 255


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


def test_pixel_nll_is_cross_entropy_on_valid_pixels_and_zero_elsewhere():
    logits, labels = _batch()
    valid = valid_pixels(labels, IGNORE)
    expected = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=IGNORE)
    nll = pixel_nll(logits, labels, valid)
    assert nll.shape == labels.shape and nll.dtype == torch.float32
    assert torch.allclose(nll, expected, atol=1e-5)
    assert (nll[~valid] == 0).all()


def test_pixel_nll_half_logits_and_large_values_stay_finite():
    logits, labels = _batch()
    valid = valid_pixels(labels, IGNORE)
    nll = pixel_nll(logits.half() * 1000, labels, valid)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    assert not nll.requires_grad


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
def test_selection_matches_the_plain_rule(confident, thresh, num_kept):
    logits, labels = _batch(confident=confident)
    valid = valid_pixels(labels, IGNORE)
    losses = pixel_nll(logits, labels, valid)
    keep = select_hard_pixels(losses, valid, thresh, min_kept=num_kept)
    assert torch.equal(keep, _reference(losses, valid, thresh, num_kept))
    hard = int((valid & (losses > -math.log(thresh))).sum()) \
        if thresh is not None else 0
    assert int(keep.sum()) == max(hard, num_kept)


def test_ignored_pixels_are_never_kept_even_when_hardest():
    logits, labels = _batch(confident=0.9)
    valid = valid_pixels(labels, IGNORE)
    losses = pixel_nll(logits, labels, valid)
    losses[~valid] = 1e6
    keep = select_hard_pixels(losses, valid, 0.7, min_kept=int(valid.sum()))
    assert torch.equal(keep, valid)
    keep = select_hard_pixels(losses, valid, None, min_kept=5)
    assert not (keep & ~valid).any() and int(keep.sum()) == 5


def test_min_kept_above_valid_keeps_every_valid_pixel():
    logits, labels = _batch(confident=1.0)
    valid = valid_pixels(labels, IGNORE)
    losses = pixel_nll(logits, labels, valid)
    for thresh in (0.7, None):
        keep = select_hard_pixels(losses, valid, thresh, min_kept=10**9)
        assert torch.equal(keep, valid)


def test_min_kept_ratio_is_a_share_of_the_valid_pixels():
    logits, labels = _batch(confident=1.0, ignore=0.25)
    valid = valid_pixels(labels, IGNORE)
    losses = pixel_nll(logits, labels, valid)
    keep = select_hard_pixels(losses, valid, 0.7, min_kept_ratio=1 / 16)
    assert int(keep.sum()) == int(valid.sum()) // 16
    assert torch.equal(keep,
                       _reference(losses, valid, 0.7,
                                  int(valid.sum()) // 16))


def test_min_kept_is_for_the_batch_not_per_image():
    logits, labels = _batch(b=2, confident=0.0, ignore=0.0)
    logits[1] = 0.
    logits[1].scatter_(0, labels[1][None], 20.)
    valid = valid_pixels(labels, IGNORE)
    losses = pixel_nll(logits, labels, valid)
    keep = select_hard_pixels(losses, valid, None, min_kept=50)
    assert int(keep[0].sum()) == 50 and not keep[1].any()


def test_all_ignored_keeps_nothing():
    logits, labels = _batch()
    labels[:] = IGNORE
    keep = hard_pixel_mask(logits, labels, 0.7, min_kept=100)
    assert keep.shape == labels.shape and not keep.any()


def test_hard_pixel_mask_checks_logits_and_selects():
    logits, labels = _batch(confident=0.8)
    valid = valid_pixels(labels, IGNORE)
    losses = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=IGNORE)
    keep = hard_pixel_mask(logits, labels, 0.7, min_kept=40)
    assert torch.equal(keep, _reference(losses, valid, 0.7, 40))
    logits[0, 0, 0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='seg_logits'):
        hard_pixel_mask(logits, labels, name='seg_logits')


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
