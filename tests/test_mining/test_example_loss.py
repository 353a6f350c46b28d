import torch
import torch.nn.functional as F

from mmohem.mining import example_losses


def test_cls_only_is_per_example_cross_entropy():
    scores = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 3, 3])
    expected = F.cross_entropy(scores, labels, reduction='none')
    assert torch.allclose(example_losses(scores, labels), expected)


def test_box_term_only_for_positives():
    scores = torch.zeros(3, 2)
    labels = torch.tensor([0, 1, 0])
    is_pos = torch.tensor([True, False, True])
    pred = torch.tensor([[0., 0., 0., 0.], [5., 5., 5., 5.], [2., 0., 0., 0.]])
    target = torch.zeros(3, 4)
    loss = example_losses(scores, labels, pred, target, is_pos, beta=1.0)
    ce = torch.log(torch.tensor(2.))
    assert torch.allclose(loss, torch.stack([ce, ce, ce + 1.5]))


def test_half_precision_scores_give_float32():
    scores = torch.randn(5, 3).half()
    loss = example_losses(scores, torch.zeros(5, dtype=torch.long))
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()


def test_dense_leading_dims():
    scores = torch.randn(2, 7, 3)
    labels = torch.randint(0, 3, (2, 7))
    loss = example_losses(scores, labels)
    assert loss.shape == (2, 7)
    assert torch.allclose(
        loss[1], F.cross_entropy(scores[1], labels[1], reduction='none'))


def test_delta_targets_are_the_delta_coders_encoding():
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

    from mmohem.mining import delta_affine, delta_targets
    gen = torch.Generator().manual_seed(0)
    priors = torch.rand(50, 4, generator=gen) * 60
    priors[:, 2:] += priors[:, :2] + 1
    gt = torch.rand(50, 4, generator=gen) * 60
    gt[:, 2:] += gt[:, :2] + 1
    means, stds = [0.1, -0.2, 0.05, 0.], [0.1, 0.1, 0.2, 0.3]
    coder = DeltaXYWHBBoxCoder(target_means=means, target_stds=stds)
    ours = delta_targets(priors, gt, delta_affine(means, stds, 'cpu'))
    assert torch.allclose(ours, coder.encode(priors, gt), atol=1e-5)


def test_delta_targets_take_seven_operations():
    from mmohem.mining import delta_affine, delta_targets
    from mmohem.testing.launches import count_launches
    priors = torch.tensor([[0., 0., 10., 20.], [5., 5., 6., 9.]])
    affine = delta_affine([0.] * 4, [0.1, 0.1, 0.2, 0.2], 'cpu')
    gt = priors + 1
    counts = count_launches(lambda: delta_targets(priors, gt, affine))
    assert counts['ops'] == 7 and counts['host_reads'] == 0
