import pytest
import torch

from mmohem.det import BoxMiningRule
from mmohem.det.mining_rule import summarise


def _case(seed, images=3, cands=200):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(images, cands, 2, generator=gen) * 80
    wh = torch.rand(images, cands, 2, generator=gen) * 30 + 4
    labels = torch.randint(0, 3, (images, cands), generator=gen)
    return dict(
        losses=torch.rand(images, cands, generator=gen),
        valid=torch.rand(images, cands, generator=gen) > 0.1,
        is_pos=labels < 2,
        boxes=torch.cat([xy, xy + wh], -1),
        labels=labels)


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('options', [
    dict(num=16, nms_thr=0.7),
    dict(num=16, nms_thr=0.5, nms_per_label=False),
    dict(num=24, nms_thr=0.5, pos_fraction=0.25, neg_pos_ub=2),
    dict(num=8, nms_thr=None),
])
def test_rule_agrees_with_the_plain_loop(seed, options, reference_mining):
    case = _case(seed)
    rule = BoxMiningRule('test', **options)
    kept = rule.mine(case['losses'], case['valid'], case['is_pos'],
                     case['boxes'], case['labels']).kept
    expected = reference_mining(
        case['losses'], case['valid'], case['is_pos'], case['boxes'],
        case['labels'] if options.get('nms_per_label', True) else None,
        options['num'], options['nms_thr'], options.get('pos_fraction'),
        options.get('neg_pos_ub', -1))
    assert torch.equal(kept, expected)


def test_num_per_pos_follows_the_positives():
    case = _case(0, images=2)
    rule = BoxMiningRule('test', num=5, num_per_pos=0.5, nms_thr=None)
    kept = rule.mine(**case).kept
    positives = (case['valid'] & case['is_pos']).sum(1)
    assert kept.sum(1).tolist() == (positives *
                                    0.5).ceil().long().clamp(min=5).tolist()


def test_ranking_losses_and_statistics():
    rule = BoxMiningRule('test', num=1, loss='cls')
    cls_loss = torch.tensor([[1., 2.]], requires_grad=True)
    box_loss = torch.tensor([[3., 0.]])
    assert rule.ranking_losses(cls_loss, box_loss).tolist() == [[1., 2.]]
    both = BoxMiningRule('test', num=1).ranking_losses(cls_loss, box_loss)
    assert both.tolist() == [[4., 2.]] and not both.requires_grad
    result = rule.mine(both, torch.ones(1, 2, dtype=torch.bool),
                       torch.tensor([[True, False]]),
                       torch.tensor([[[0., 0., 4., 4.], [9., 9., 12., 12.]]]),
                       torch.tensor([[0, 1]]))
    stats = summarise(
        BoxMiningRule.statistics(result, both, result.kept
                                 & torch.tensor([[True, False]])).tolist())
    assert stats == dict(
        kept_pos=1.,
        kept_neg=0.,
        no_pos_images=0.,
        nms_suppressed=0.,
        loss_kept=4.,
        loss_all=3.)


def test_images_whose_negatives_outrank_every_positive_are_counted():
    """The share of images that train no box regression: here the first
    image's negative outranks its positive, the second keeps a positive."""
    rule = BoxMiningRule('test', num=1, nms_thr=None)
    losses = torch.tensor([[1., 5.], [6., 2.]])
    is_pos = torch.tensor([[True, False], [True, False]])
    result = rule.mine(losses, torch.ones(2, 2, dtype=torch.bool), is_pos,
                       torch.zeros(2, 2, 4),
                       torch.zeros(2, 2).long())
    stats = summarise(
        BoxMiningRule.statistics(result, losses,
                                 result.kept & is_pos).tolist())
    assert stats['no_pos_images'] == 0.5
    assert stats['kept_pos'] == 0.5


@pytest.mark.parametrize('nms_thr', [None, 0.7])
def test_a_non_finite_loss_is_an_error_when_the_statistics_are_read(nms_thr):
    """Mining does not read the device to look for NaN; the sums of its
    statistics reveal it, and summarising them raises: with the loss-NMS
    too, where the NaN candidate takes part in the NMS of its prefix."""
    rule = BoxMiningRule('test', num=1, nms_thr=nms_thr)
    # 200 candidates: the NMS examines a loss-sorted prefix of 64.
    losses = torch.rand(2, 200, generator=torch.Generator().manual_seed(0))
    losses[0, 1] = float('nan')
    is_pos = torch.zeros(2, 200, dtype=torch.bool)
    is_pos[:, 0] = True
    valid = torch.ones(2, 200, dtype=torch.bool)
    boxes = torch.tensor([0., 0., 10., 10.]).expand(2, 200, 4)
    labels = torch.zeros(2, 200).long()
    result = rule.mine(losses, valid, is_pos, boxes, labels)
    rows = BoxMiningRule.statistics(result, losses,
                                    result.kept & is_pos).tolist()
    with pytest.raises(FloatingPointError, match='1 image'):
        summarise(rows)
    valid[0, 1] = False  # a NaN where nothing is mined is no error
    result = rule.mine(losses, valid, is_pos, boxes, labels)
    summarise(
        BoxMiningRule.statistics(result, losses,
                                 result.kept & is_pos).tolist())


@pytest.mark.parametrize('option, value, match', [
    ('num', 0, r'`num` must be an integer >= 1'),
    ('nms_thr', 1.5, r'`nms_thr` must be a number in \(0, 1\] or None'),
    ('nms_per_label', 'yes', r'`nms_per_label` must be one of True, False'),
    ('loss', 'bbox', r"`loss` must be one of 'cls', 'cls\+bbox'"),
    ('pos_fraction', 0, r'`pos_fraction` must be a number in \(0, 1\]'),
])
def test_bad_options_name_the_option(option, value, match):
    options = dict(num=4)
    options[option] = value
    with pytest.raises(ValueError, match=match):
        BoxMiningRule('test', **options)
