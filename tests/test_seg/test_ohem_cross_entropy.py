import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS, TASK_UTILS
from mmseg.structures.sampler import OHEMPixelSampler
from mmseg.utils import register_all_modules

from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler

IGNORE = 255
OHEM = 'mmohem.OhemCrossEntropy'


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    """Build as an mmseg config does: mmseg's modules, mmseg scope."""
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


class Head(torch.nn.Module):
    """Stand-in decode head: what a pixel sampler reads from its context."""

    def __init__(self, ignore_index=IGNORE):
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_decode = CrossEntropyLoss()


def _batch(b=2, c=7, h=24, w=32, confident=0.9, ignore=0.12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (b, h, w), generator=gen)
    logits = torch.randn(b, c, h, w, generator=gen)
    boost = 6. * (torch.rand(b, 1, h, w, generator=gen) < confident)
    logits.scatter_add_(1, labels[:, None], boost)
    labels[torch.rand(b, h, w, generator=gen) < ignore] = IGNORE
    return logits, labels


def _sampler(**kwargs):
    return TASK_UTILS.build(
        dict(type=OHEM, **kwargs), default_args=dict(context=Head()))


# Registry ------------------------------------------------------------------


def test_both_flavours_are_registered_under_one_name():
    assert isinstance(MODELS.build(dict(type=OHEM)), OhemCrossEntropyLoss)
    sampler = _sampler()
    assert isinstance(sampler, OhemCrossEntropySampler)
    assert sampler.rule.thresh == 0.7 and sampler.rule.min_kept == 100000


def test_lookup_works_without_a_default_scope():
    with DefaultScope.overwrite_default_scope(None):
        assert isinstance(MODELS.build(dict(type=OHEM)), OhemCrossEntropyLoss)
        assert isinstance(
            TASK_UTILS.build(
                dict(type=OHEM), default_args=dict(context=Head())),
            OhemCrossEntropySampler)


def test_decode_head_builds_the_sampler_with_itself_as_context():
    head = MODELS.build(
        dict(
            type='FCNHead',
            in_channels=8,
            channels=8,
            num_classes=7,
            sampler=dict(type=OHEM, min_kept=10)))
    assert isinstance(head.sampler, OhemCrossEntropySampler)
    assert head.sampler.context is head


# Sampler flavour -------------------------------------------------------------


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('thresh,min_kept', [(0.7, 2), (0.7, 100), (0.7, 500),
                                             (0.9, 600), (0.5, 20),
                                             (None, 100), (None, 600)])
def test_sampler_keeps_the_pixels_mmseg_keeps(seed, thresh, min_kept):
    logits, labels = _batch(seed=seed)
    ours = _sampler(thresh=thresh, min_kept=min_kept)
    theirs = OHEMPixelSampler(Head(), thresh=thresh, min_kept=min_kept)
    weight = ours.sample(logits, labels[:, None])
    assert weight.shape == labels.shape and weight.dtype == logits.dtype
    assert torch.equal(weight, theirs.sample(logits, labels[:, None]))


def test_sampler_uses_the_heads_ignore_index():
    logits, labels = _batch(ignore=0.0)
    labels[:, :4] = 3
    sampler = TASK_UTILS.build(
        dict(type=OHEM, thresh=1.0, min_kept=1),
        default_args=dict(context=Head(3)))
    weight = sampler.sample(logits, labels[:, None])
    assert (weight[labels == 3] == 0).all()
    assert (weight[labels != 3] == 1).all()


def test_sampler_min_kept_above_valid_keeps_all_valid_pixels():
    logits, labels = _batch(confident=1.0)
    weight = _sampler(min_kept=10**6).sample(logits, labels[:, None])
    assert torch.equal(weight.bool(), labels != IGNORE)


def test_sampler_min_kept_ratio():
    logits, labels = _batch(confident=1.0)
    weight = _sampler(min_kept_ratio=1 / 16).sample(logits, labels[:, None])
    assert int(weight.sum()) == int((labels != IGNORE).sum()) // 16


def test_sampler_all_ignored_gives_zero_weight_and_head_loss_trains():
    logits, labels = _batch()
    labels[:] = IGNORE
    weight = _sampler(min_kept=5).sample(logits, labels[:, None])
    assert not weight.any()
    logits.requires_grad_()
    loss = CrossEntropyLoss()(
        logits, labels, weight=weight, ignore_index=IGNORE)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(logits.grad).all()


def test_sampler_rejects_non_finite_logits():
    logits, labels = _batch()
    logits[0, 1, 2, 3] = float('inf')
    with pytest.raises(FloatingPointError, match='seg_logits'):
        _sampler().sample(logits, labels[:, None])


@pytest.mark.parametrize('flavour', ['sampler', 'loss'])
@pytest.mark.parametrize('bad_label', [7, 33, -1])
def test_labels_that_are_not_classes_are_a_clear_error(flavour, bad_label):
    """Cityscapes label ids instead of train ids: a ValueError naming the
    field (on CUDA the cross-entropy would end in a device-side assert)."""
    logits, labels = _batch(c=7)
    labels[1, 3, 4] = bad_label
    message = (r'`gt_sem_seg` must hold class indices in \[0, 6\] or the '
               r'ignore index 255; got 1 pixel\(s\) labelled from '
               f'{bad_label} to {bad_label}')
    with pytest.raises(ValueError, match=message):
        if flavour == 'sampler':
            _sampler().sample(logits, labels[:, None])
        else:
            OhemCrossEntropyLoss()(logits, labels)


def test_sampler_needs_a_head_as_context():
    with pytest.raises(TypeError, match='context'):
        TASK_UTILS.build(dict(type=OHEM), default_args=dict(context=None))
    with pytest.raises(ValueError, match='context.ignore_index'):
        TASK_UTILS.build(
            dict(type=OHEM), default_args=dict(context=Head('255')))


@pytest.mark.parametrize('flavour', ['sampler', 'loss'])
def test_both_flavours_log_the_kept_pixels(flavour):
    logits, labels = _batch(confident=0.5)
    hub = MessageHub.get_instance(f'test_kept_pixels_{flavour}')
    assert MessageHub.get_current_instance() is hub
    if flavour == 'sampler':
        kept = _sampler(min_kept=50).sample(logits, labels[:, None])
    else:
        loss = MODELS.build(dict(type=OHEM, min_kept=50))
        kept = loss(logits, labels, reduction_override='none') > 0
    valid = labels != IGNORE
    fraction = hub.get_scalar('train/ohem/kept_fraction').current()
    per_image = hub.get_scalar('train/ohem/num_kept').current()
    assert fraction == pytest.approx(float(kept.sum() / valid.sum()))
    assert per_image == pytest.approx(float(kept.sum()) / 2)
    assert 0 < fraction < 1


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('flavour', ['sampler', 'loss'])
def test_low_precision_logits_are_mined_in_float32(flavour, dtype):
    """AMP hands the heads bf16/fp16 logits: the selection must be that of
    the same values in float32, and the loss float32."""
    logits, labels = _batch(confident=0.5)
    low = logits.to(dtype)
    if flavour == 'sampler':
        sampler = _sampler(min_kept=50)
        kept = sampler.sample(low, labels[:, None])
        assert kept.dtype == dtype
        expected = sampler.sample(low.float(), labels[:, None])
        assert torch.equal(kept.float(), expected)
    else:
        loss = MODELS.build(dict(type=OHEM, min_kept=50))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            value = loss(low.requires_grad_(), labels)
        assert value.dtype == torch.float32
        assert value.item() == pytest.approx(
            loss(low.float(), labels).item(), rel=1e-6)
        value.backward()
        assert torch.isfinite(low.grad).all()


# Loss flavour ----------------------------------------------------------------


@pytest.mark.parametrize('avg_non_ignore', [True, False])
@pytest.mark.parametrize('ignore', [0.0, 0.2])
def test_loss_equals_mmseg_cross_entropy_when_all_pixels_are_kept(
        avg_non_ignore, ignore):
    logits, labels = _batch(ignore=ignore)
    ours = MODELS.build(
        dict(
            type=OHEM,
            thresh=1.0,
            loss_weight=0.4,
            avg_non_ignore=avg_non_ignore))
    theirs = CrossEntropyLoss(loss_weight=0.4, avg_non_ignore=avg_non_ignore)
    for kwargs in ({}, dict(reduction_override='sum'),
                   dict(reduction_override='none')):
        assert torch.allclose(
            ours(logits, labels, ignore_index=IGNORE, **kwargs),
            theirs(logits, labels, ignore_index=IGNORE, **kwargs),
            atol=1e-6)


@pytest.mark.parametrize('avg_non_ignore', [True, False])
def test_loss_class_weight_matches_mmseg_when_all_pixels_are_kept(
        avg_non_ignore):
    # mmseg's CrossEntropyLoss fails on ignored pixels with class_weight.
    logits, labels = _batch(ignore=0.0)
    class_weight = [0.5, 1.0, 2.0, 0.1, 1.5, 3.0, 0.7]
    ours = MODELS.build(
        dict(
            type=OHEM,
            min_kept=10**6,
            class_weight=class_weight,
            avg_non_ignore=avg_non_ignore))
    theirs = CrossEntropyLoss(
        class_weight=class_weight, avg_non_ignore=avg_non_ignore)
    assert torch.allclose(
        ours(logits, labels, ignore_index=IGNORE),
        theirs(logits, labels, ignore_index=IGNORE))


def test_loss_class_weight_with_ignored_pixels_is_pytorch_weighted_mean():
    logits, labels = _batch()
    class_weight = torch.rand(7) + 0.1
    ours = OhemCrossEntropyLoss(thresh=1.0, class_weight=class_weight.tolist())
    expected = F.cross_entropy(
        logits, labels, weight=class_weight, ignore_index=IGNORE)
    assert torch.allclose(ours(logits, labels), expected)


def test_loss_is_the_mean_over_the_kept_pixels():
    logits, labels = _batch(confident=0.9)
    keep = _sampler(thresh=0.7, min_kept=300).sample(logits, labels[:, None])
    pixel = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=IGNORE)
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=300)(logits, labels)
    assert 600 <= keep.sum() < (labels != IGNORE).sum()
    assert torch.allclose(loss, (pixel * keep).sum() / keep.sum())


def test_loss_without_avg_non_ignore_equals_sampler_plus_mmseg_ce():
    logits, labels = _batch(confident=0.9)
    keep = _sampler(thresh=0.7, min_kept=300).sample(logits, labels[:, None])
    expected = CrossEntropyLoss(loss_weight=2.)(
        logits, labels, weight=keep, ignore_index=IGNORE)
    ours = OhemCrossEntropyLoss(
        min_kept=300, avg_non_ignore=False, loss_weight=2.)
    assert torch.allclose(ours(logits, labels), expected)


def test_loss_back_propagates_through_kept_pixels_only():
    logits, labels = _batch(confident=0.9)
    keep = _sampler(min_kept=300).sample(logits, labels[:, None]).bool()
    logits.requires_grad_()
    OhemCrossEntropyLoss(min_kept=300)(logits, labels).backward()
    touched = logits.grad.abs().sum(1) > 0
    assert torch.equal(touched, keep)


def test_loss_call_ignore_index_wins_and_default_is_255():
    logits, labels = _batch(ignore=0.0)
    labels[:, :5] = 0
    loss = OhemCrossEntropyLoss(thresh=1.0)
    with_zero_ignored = loss(logits, labels, ignore_index=0)
    expected = F.cross_entropy(logits, labels, ignore_index=0)
    assert torch.allclose(with_zero_ignored, expected)
    labels[:, :5] = IGNORE
    assert torch.allclose(
        loss(logits, labels),
        F.cross_entropy(logits, labels, ignore_index=IGNORE))


def test_loss_all_ignored_is_zero_with_grad():
    logits, labels = _batch()
    labels[:] = IGNORE
    logits.requires_grad_()
    for avg_non_ignore in (True, False):
        loss = OhemCrossEntropyLoss(
            avg_non_ignore=avg_non_ignore, class_weight=[1.] * 7)(logits,
                                                                  labels)
        loss.backward()
        assert loss.item() == 0 and loss.requires_grad
        assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_loss_rejects_non_finite_logits():
    logits, labels = _batch()
    logits[1, 0, 0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='seg_logits'):
        OhemCrossEntropyLoss()(logits, labels)


def test_loss_name_and_weight_per_pixel():
    loss = MODELS.build(dict(type=OHEM, loss_name='loss_ohem'))
    assert loss.loss_name == 'loss_ohem'
    logits, labels = _batch()
    weight = torch.rand(labels.shape)
    half = loss(logits, labels, weight=weight * 0.5)
    assert torch.allclose(half * 2, loss(logits, labels, weight=weight))


def test_loss_class_weight_must_match_the_classes():
    logits, labels = _batch()
    with pytest.raises(ValueError, match='class_weight'):
        OhemCrossEntropyLoss(class_weight=[1., 2.])(logits, labels)


# Options ---------------------------------------------------------------------

BAD_OPTIONS = [
    (dict(thresh=0.), ValueError, r'`thresh` must be a number in \(0, 1\]'),
    (dict(thresh=1.5), ValueError, r'`thresh` must be a number in \(0, 1\]'),
    (dict(thresh='0.7'), ValueError, '`thresh`'),
    (dict(min_kept=0), ValueError, '`min_kept` must be an integer >= 1'),
    (dict(min_kept=2.5), ValueError, '`min_kept` must be an integer >= 1'),
    (dict(min_kept_ratio=0.), ValueError,
     r'`min_kept_ratio` must be a number in \(0, 1\]'),
    (dict(min_kept_ratio=1.2), ValueError, '`min_kept_ratio`'),
    (dict(min_kept=10, min_kept_ratio=0.1), ValueError, 'not both'),
    (dict(min_kep=10), TypeError, 'did you mean `min_kept`'),
]
BAD_LOSS_OPTIONS = [
    (dict(loss_weight=-1.), ValueError, '`loss_weight` must be a number >= 0'),
    (dict(ignore_index='255'), ValueError,
     '`ignore_index` must be an integer or None'),
    (dict(ignore_index=2.5), ValueError, '`ignore_index`'),
    (dict(class_weight=[1., -1.]), ValueError, r'`class_weight\[1\]`'),
    (dict(reduction='avg'), ValueError, '`reduction` must be one of'),
    (dict(loss_name='ohem'), ValueError, "`loss_name` must be a str starting"),
    (dict(use_sigmoid=True), TypeError, 'unknown option'),
]


@pytest.mark.parametrize('options,error,message', BAD_OPTIONS)
def test_sampler_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        _sampler(**options)


@pytest.mark.parametrize('options,error,message',
                         BAD_OPTIONS + BAD_LOSS_OPTIONS)
def test_loss_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        MODELS.build(dict(type=OHEM, **options))


def test_loss_bad_call_arguments():
    logits, labels = _batch()
    loss = OhemCrossEntropyLoss()
    with pytest.raises(ValueError, match='reduction_override'):
        loss(logits, labels, reduction_override='avg')
    with pytest.raises(ValueError, match='ignore_index'):
        loss(logits, labels, ignore_index='x')


def test_defaults_and_accepted_edges():
    loss = OhemCrossEntropyLoss(
        thresh=None, min_kept_ratio=1.0, ignore_index=None)
    assert loss.rule.min_kept is None and loss.rule.min_kept_ratio == 1.0
    assert _sampler(thresh=1.0, min_kept=1).rule.thresh == 1.0
