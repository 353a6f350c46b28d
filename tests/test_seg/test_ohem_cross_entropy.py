import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS, TASK_UTILS
from mmseg.structures.sampler import OHEMPixelSampler
from mmseg.utils import register_all_modules

from mmohem.mining import pixel as pixel_module
from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler
from mmohem.testing.pixel_cases import seg_data_samples

IGNORE = 255
OHEM = 'mmohem.OhemCrossEntropy'


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    """Build as an mmseg config does: mmseg's modules, mmseg scope."""
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(params=['cpu', 'cuda'])
def path(request, monkeypatch):
    """Run the test on both implementations of the mining (the 'cuda' one
    on CPU tensors)."""
    monkeypatch.setattr(pixel_module, 'pixel_path',
                        lambda device: request.param)
    return request.param


class Head(torch.nn.Module):
    """Stand-in decode head: what a pixel sampler reads from its context."""

    def __init__(self, ignore_index=IGNORE, loss_decode=None, **attrs):
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_decode = loss_decode or CrossEntropyLoss()
        vars(self).update(attrs)


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
def test_sampler_keeps_the_pixels_mmseg_keeps(path, seed, thresh, min_kept):
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
    fraction = hub.get_scalar('train/ohem_kept_fraction').current()
    per_image = hub.get_scalar('train/ohem_kept_pixels').current()
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


def test_loss_is_the_mean_over_the_kept_pixels(path):
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


def test_loss_back_propagates_through_kept_pixels_only(path):
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
    (dict(use_sigmoid='yes'), ValueError,
     '`use_sigmoid` must be one of True, False'),
    (dict(use_sigmod=True), TypeError, 'did you mean `use_sigmoid`'),
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


# Small maps ------------------------------------------------------------------


@pytest.mark.parametrize('thresh', [None, 0.7])
@pytest.mark.parametrize('flavour', ['sampler', 'loss'])
def test_min_kept_ratio_keeps_a_pixel_of_a_map_with_few_valid(
        path, flavour, thresh):
    """thresh=None, min_kept_ratio=1/16 and 10 valid pixels used to keep
    none and give a zero loss; the hardest valid pixel is kept."""
    logits, labels = _batch(b=1, h=4, w=4, confident=1.0, ignore=0.0)
    labels[0, :2, :3] = IGNORE
    pixel = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=IGNORE)
    hardest = pixel.flatten().argmax()
    options = dict(thresh=thresh, min_kept_ratio=1 / 16)
    if flavour == 'sampler':
        kept = _sampler(**options).sample(logits, labels[:, None])
    else:
        loss = OhemCrossEntropyLoss(**options)
        assert loss(logits, labels) == pytest.approx(float(pixel.max()))
        kept = loss(logits, labels, reduction_override='none') > 0
    assert kept.flatten().nonzero().flatten().tolist() == [hardest]


# Binary segmentation (out_channels=1, use_sigmoid=True) ----------------------

# One image, 2x3 pixels: foreground logit and label (255 ignored).
BINARY_LOGITS = [[2., -1., 0.], [3., -3., 0.5]]
BINARY_LABELS = [[1, 1, 0], [0, 0, IGNORE]]


def _binary_map():
    logits = torch.tensor(BINARY_LOGITS)[None, None]
    return logits, torch.tensor(BINARY_LABELS)[None]


def _hand_bce():
    """-log p(true class) of the valid pixels of the binary map, in order:
    log(1 + e^-x) for foreground, log(1 + e^x) for background."""
    return [
        math.log1p(math.exp(-x if y == 1 else x))
        for row_x, row_y in zip(BINARY_LOGITS, BINARY_LABELS)
        for x, y in zip(row_x, row_y) if y != IGNORE
    ]


def _binary_head(**kwargs):
    loss = CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)
    return Head(loss_decode=loss, out_channels=1, num_classes=2, **kwargs)


@pytest.mark.parametrize('min_kept,expected', [
    (1, [[0, 1, 1], [1, 0, 0]]),
    (4, [[1, 1, 1], [1, 0, 0]]),
    (10, [[1, 1, 1], [1, 1, 0]]),
])
def test_binary_sampler_keeps_pixels_by_their_bce(path, min_kept, expected):
    """Hand-computed: p(true) = 0.88, 0.27, 0.5, 0.05, 0.95: three are
    below 0.7; min_kept=4 adds the fifth pixel (BCE 0.127 > 0.049)."""
    logits, labels = _binary_map()
    sampler = TASK_UTILS.build(
        dict(type=OHEM, thresh=0.7, min_kept=min_kept),
        default_args=dict(context=_binary_head()))
    assert sampler.sigmoid
    weight = sampler.sample(logits, labels[:, None])
    assert weight.tolist() == [expected]


def test_binary_sampler_on_an_all_background_batch(path):
    """Ranks by sigmoid, not a softmax over one channel (all 0 losses)."""
    logits, labels = _batch(c=1, confident=0.0, ignore=0.1)
    labels[labels != IGNORE] = 0
    sampler = TASK_UTILS.build(
        dict(type=OHEM, thresh=0.7, min_kept=1),
        default_args=dict(context=_binary_head()))
    weight = sampler.sample(logits, labels[:, None])
    expected = (labels != IGNORE) & (1 - torch.sigmoid(logits[:, 0]) < 0.7)
    assert 0 < expected.sum() < (labels != IGNORE).sum()
    assert torch.equal(weight.bool(), expected)


@pytest.mark.parametrize('min_kept,kept', [(1, [1, 2, 3]), (4, [0, 1, 2, 3])])
def test_binary_loss_is_the_hand_computed_bce_of_the_kept(
        path, min_kept, kept):
    logits, labels = _binary_map()
    loss = MODELS.build(
        dict(type=OHEM, use_sigmoid=True, thresh=0.7, min_kept=min_kept))
    bce = _hand_bce()
    expected = sum(bce[i] for i in kept) / len(kept)
    logits.requires_grad_()
    value = loss(logits, labels)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[0, 0, 1, 1:] == 0).all()  # easy, ignored


def test_binary_loss_equals_mmseg_bce_when_all_pixels_are_kept():
    logits, labels = _batch(c=1, ignore=0.2)
    labels[labels != IGNORE] %= 2
    ours = OhemCrossEntropyLoss(thresh=1.0, use_sigmoid=True, loss_weight=2.)
    theirs = CrossEntropyLoss(
        use_sigmoid=True, avg_non_ignore=True, loss_weight=2.)
    assert torch.allclose(
        ours(logits, labels), theirs(logits, labels, ignore_index=IGNORE))


def test_binary_loss_class_weight_is_background_then_foreground():
    logits, labels = _binary_map()
    loss = OhemCrossEntropyLoss(
        use_sigmoid=True, thresh=1.0, class_weight=[0.5, 2.])
    bce, weights = _hand_bce(), [2., 2., 0.5, 0.5, 0.5]
    expected = sum(w * b for w, b in zip(weights, bce)) / sum(weights)
    assert loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r'2 classes \(background, fore'):
        OhemCrossEntropyLoss(
            use_sigmoid=True, class_weight=[1.] * 3)(logits, labels)


def test_binary_channel_and_label_errors_say_what_to_change():
    logits, labels = _binary_map()
    with pytest.raises(ValueError, match='set `use_sigmoid`=True'):
        OhemCrossEntropyLoss()(logits, labels)
    with pytest.raises(ValueError, match='got 3 channels.*use_sigmoid=False'):
        OhemCrossEntropyLoss(use_sigmoid=True)(_batch(c=3)[0], _batch(c=3)[1])
    with pytest.raises(ValueError, match='set out_channels=1, num_classes=2'):
        _sampler().sample(logits, labels[:, None])
    labels[0, 0, 0] = 2
    with pytest.raises(ValueError, match=r'in \[0, 1\].*1 for foreground'):
        OhemCrossEntropyLoss(use_sigmoid=True)(logits, labels)


def test_binary_head_with_a_softmax_loss_is_a_build_error():
    head = Head(
        loss_decode=CrossEntropyLoss(use_sigmoid=False),
        out_channels=1,
        num_classes=2)
    with pytest.raises(
            ValueError,
            match=r'loss_decode\[0\] '
            r'\(CrossEntropyLoss\) has `use_sigmoid`=False'):
        TASK_UTILS.build(dict(type=OHEM), default_args=dict(context=head))


def _fcn_head(**kwargs):
    return MODELS.build(
        dict(
            type='FCNHead',
            in_channels=4,
            channels=4,
            num_convs=1,
            concat_input=False,
            **kwargs))


@pytest.mark.parametrize('flavour', ['sampler', 'loss'])
def test_binary_decode_head_trains_end_to_end(flavour):
    """mmseg's binary head (out_channels=1, use_sigmoid=True) with our
    sampler or loss: finite loss, finite gradients."""
    torch.manual_seed(0)
    bce = dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True)
    ohem = dict(type=OHEM, thresh=0.7, min_kept=20)
    if flavour == 'sampler':
        options = dict(loss_decode=bce, sampler=ohem)
    else:
        options = dict(loss_decode=dict(ohem, use_sigmoid=True))
    head = _fcn_head(
        num_classes=2, out_channels=1, threshold=0.5, **options).train()
    labels = torch.randint(0, 2, (2, 16, 16))
    labels[:, :3] = IGNORE
    losses = head.loss((torch.randn(2, 4, 8, 8), ), seg_data_samples(labels),
                       {})
    assert torch.isfinite(losses['loss_ce']) and losses['loss_ce'] > 0
    losses['loss_ce'].backward()
    grads = [p.grad for p in head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# Losses that cannot take a sampler's weight ---------------------------------


def test_sampler_with_dice_loss_is_a_clear_build_error():
    """mmseg's own sampler fails later with a bare AssertionError inside
    dice_loss."""
    message = (r"loss_decode\[1\] is DiceLoss, which cannot apply the "
               r'per-pixel weight .* Remove `sampler` and put '
               r"dict\(type='mmohem.OhemCrossEntropy', ...\) \(the loss "
               r'flavour\) in `loss_decode` beside DiceLoss')
    with pytest.raises(ValueError, match=message):
        _fcn_head(
            num_classes=7,
            sampler=dict(type=OHEM),
            loss_decode=[dict(type='CrossEntropyLoss'),
                         dict(type='DiceLoss')])


def test_loss_flavour_beside_an_unweighted_dice_loss_trains():
    head = _fcn_head(
        num_classes=7,
        loss_decode=[
            dict(type=OHEM, min_kept=20),
            dict(type='DiceLoss', loss_name='loss_dice')
        ]).train()
    labels = torch.randint(0, 7, (2, 16, 16))
    losses = head.loss((torch.randn(2, 4, 8, 8), ), seg_data_samples(labels),
                       {})
    total = losses['loss_ce'] + losses['loss_dice']
    total.backward()
    assert torch.isfinite(total) and losses['loss_ce'] > 0
