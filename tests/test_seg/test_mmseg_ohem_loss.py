import pytest
import torch
from mmseg.models.losses import OhemCrossEntropy

from mmohem.seg import MMSegOhemCrossEntropy


def _batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=gen, requires_grad=True)
    labels = torch.randint(0, 4, (2, 8, 8), generator=gen)
    labels[:, :2] = 7
    return logits, labels


def test_is_mmsegs_loss_with_the_heads_ignore_index():
    logits, labels = _batch()
    ours = MMSegOhemCrossEntropy(thres=0.7, min_kept=20)
    theirs = OhemCrossEntropy(ignore_label=7, thres=0.7, min_kept=20)
    loss = ours(logits, labels, weight=None, ignore_index=7)
    assert torch.equal(loss, theirs(logits, labels))
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert ours.loss_name == 'loss_ohem'


def test_a_pixel_weight_is_refused():
    logits, labels = _batch()
    with pytest.raises(ValueError, match='cannot apply a per-pixel weight'):
        MMSegOhemCrossEntropy()(
            logits, labels, weight=torch.ones(2, 8, 8), ignore_index=7)
