"""Launched operations and host reads of the OHEM pixel mining, counted on
the CPU on the path CUDA runs, against mmseg's on the same inputs.

Inputs: 2x19x64x128 logits, ~12% ignored pixels, ``thresh=0.7`` and
``min_kept=1000`` per image: ``random`` logits leave nearly every pixel
hard (no fallback), ``confident`` ones ~6% (the top-k fallback runs).
"""
import pytest
from mmseg.models.losses import CrossEntropyLoss
from mmseg.structures.sampler import OHEMPixelSampler

from mmohem.mining import pixel as pixel_module
from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler
from mmohem.testing.launch_cases import (PIXEL_OPTIONS, PIXEL_SHAPE,
                                         count_rows, pixel_launch_cases)
from mmohem.testing.launches import count_launches
from mmohem.testing.pixel_cases import REGIMES, DecodeHead, pixel_batch

SHAPE = PIXEL_SHAPE
OPTIONS = PIXEL_OPTIONS
#: Ours at most this many times mmseg's sampler's operations, and the
#: loss at most this many times plain cross-entropy's (its mining on top).
SAMPLER_FACTOR = 1.0
LOSS_FACTOR = 4


@pytest.fixture(autouse=True)
def cuda_path(monkeypatch):
    monkeypatch.setattr(pixel_module, 'pixel_path', lambda device: 'cuda')


def _batch(regime):
    return pixel_batch(SHAPE, regime)


@pytest.mark.parametrize('regime,fallback', [('random', False),
                                             ('confident', True)])
def test_sampler_launches_at_most_as_mmseg_and_reads_once(regime, fallback):
    logits, labels = _batch(regime)
    ours = OhemCrossEntropySampler(DecodeHead(), **OPTIONS)
    theirs = OHEMPixelSampler(DecodeHead(), **OPTIONS)
    counts = {
        name: count_launches(lambda s=s: s.sample(logits, labels[:, None]))
        for name, s in (('ours', ours), ('theirs', theirs))
    }
    assert ('topk' in counts['ours']['by_op']) == fallback
    assert 'exp_' not in counts['ours']['by_op']  # no loop over the classes
    assert counts['ours']['ops'] <= SAMPLER_FACTOR * counts['theirs']['ops']
    assert counts['ours']['ops'] <= 40
    assert counts['ours']['reads'] == ['tolist']
    assert counts['theirs']['host_reads'] > 1


@pytest.mark.parametrize('regime,fallback', [('random', False),
                                             ('confident', True)])
def test_loss_launches_at_most_4x_cross_entropy_and_reads_once(
        regime, fallback):
    logits, labels = _batch(regime)
    logits.requires_grad_()
    ours = OhemCrossEntropyLoss(**OPTIONS)
    theirs = CrossEntropyLoss()
    counts = {
        name: count_launches(lambda f=f: f(logits, labels, ignore_index=255))
        for name, f in (('ours', ours), ('theirs', theirs))
    }
    assert ('topk' in counts['ours']['by_op']) == fallback
    assert counts['ours']['ops'] <= LOSS_FACTOR * counts['theirs']['ops']
    assert counts['ours']['ops'] <= 20
    assert counts['ours']['reads'] == ['tolist']
    assert counts['theirs']['host_reads'] == 0


def test_binary_loss_launches_at_most_4x_mmseg_bce():
    logits, labels = _batch('confident')
    logits = logits[:, :1].clone().requires_grad_()
    labels = labels.where(labels == 255, labels % 2)
    ours = OhemCrossEntropyLoss(use_sigmoid=True, **OPTIONS)
    theirs = CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)
    mine = count_launches(lambda: ours(logits, labels, ignore_index=255))
    peer = count_launches(lambda: theirs(logits, labels, ignore_index=255))
    assert mine['ops'] <= LOSS_FACTOR * peer['ops']
    assert mine['reads'] == ['tolist']


def test_chunks_of_large_logits_are_three_launches_each():
    """One image a chunk: log_softmax, gather, neg per image."""
    logits, labels = _batch('random')
    target = pixel_module.class_targets(labels, SHAPE[1])
    image_bytes = 4 * logits[0].numel()
    counts = count_launches(
        lambda: pixel_module.pixel_nll(logits, target, image_bytes))
    assert counts['by_op'] == {'log_softmax': 2, 'gather': 2, 'neg': 2}
    assert counts['host_reads'] == 0


def test_launch_cases_count_both_paths_within_budget():
    """The counter's pixel rows: a training step of the loss (forward and
    backward) at most as many operations as mmseg's own OHEM loss with
    fewer host reads, within the budget against plain cross-entropy and at
    most 25 operations; the sampler on the ``'cuda'`` path within its
    budget; one host read on it."""
    rows = {(r['case'], r['arm']): r for r in count_rows(pixel_launch_cases())}
    for regime in REGIMES:
        sampler = rows[(f'pixel sampler, {regime}',
                        'mmohem sampler, CUDA path')]
        loss = rows[(f'pixel loss, {regime}', 'mmohem loss, CUDA path')]
        mmseg_ohem = rows[(f'pixel loss, {regime}',
                           'mmseg OhemCrossEntropy loss')]
        plain = rows[(f'pixel loss, {regime}', 'mmseg CrossEntropyLoss')]
        assert sampler['vs_peer'] <= SAMPLER_FACTOR
        assert loss['vs_peer'] <= 1.0 and loss['ops'] <= 25
        assert loss['host_reads'] < mmseg_ohem['host_reads']
        assert loss['ops'] <= LOSS_FACTOR * plain['ops']
        assert sampler['host_reads'] == loss['host_reads'] == 1
    cpu_path = rows[('pixel sampler, confident', 'mmohem sampler, CPU path')]
    assert cpu_path['host_reads'] == 3  # the radix select reads twice more
