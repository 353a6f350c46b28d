"""Do the CPU and another device keep the same examples from the same
inputs?"""
from typing import Dict, Tuple

import torch
from torch import Tensor


def random_candidates(images: int, cands: int, device: str,
                      seed: int) -> Dict[str, Tensor]:
    """Overlapping random boxes with losses, labels and masks.

    Args:
        images (int): Batch size B.
        cands (int): Candidates per image N.
        device (str): Where the tensors go (made on the CPU first, so the
            values do not depend on the device).
        seed (int): Seed of the generator.

    Returns:
        dict: ``losses`` Tensor[B, N], ``valid``, ``is_pos`` (bool
        Tensor[B, N]), ``boxes`` Tensor[B, N, 4], ``labels`` Tensor[B, N].
    """
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(images, cands, 2, generator=gen) * 600
    wh = torch.rand(images, cands, 2, generator=gen) * 120 + 8
    labels = torch.randint(0, 5, (images, cands), generator=gen)
    case = dict(
        losses=torch.rand(images, cands, generator=gen) * 4,
        valid=torch.rand(images, cands, generator=gen) > 0.05,
        is_pos=labels < 4,
        boxes=torch.cat([xy, xy + wh], dim=-1),
        labels=labels)
    return {key: value.to(device) for key, value in case.items()}


def random_pixels(shape: Tuple[int, int, int, int], device: str,
                  seed: int) -> Tuple[Tensor, Tensor]:
    """Logits confident on about 90% of the pixels, and labels with about
    10% ignored (255).

    Args:
        shape (tuple): ``(B, C, H, W)``.
        device (str): Where the tensors go (made on the CPU first).
        seed (int): Seed of the generator.

    Returns:
        tuple[Tensor[B, C, H, W], Tensor[B, H, W]]: Logits and labels.
    """
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    labels = torch.randint(0, c, (b, h, w), generator=gen)
    logits = torch.randn(shape, generator=gen)
    boost = 6. * (torch.rand(b, 1, h, w, generator=gen) < 0.9)
    logits.scatter_add_(1, labels[:, None], boost)
    labels[torch.rand(b, h, w, generator=gen) < 0.1] = 255
    return logits.to(device), labels.to(device)


def mining_agreement(device: str,
                     images: int = 4,
                     cands: int = 3000) -> Dict[str, Dict]:
    """Kept examples of the mining functions on the CPU and on ``device``.

    Cases: loss-NMS + top-k per label (the RoI default), the same with a
    positive quota, the loss-NMS in chunks, and the pixel selection (one
    batch at 4x19x128x256, ``thresh=0.7``, ``min_kept`` above the hard
    pixels so the radix select runs).

    Args:
        device (str): The device compared with the CPU.
        images (int): Batch size of the box cases.
        cands (int): Candidates per image of the box cases.

    Returns:
        dict: Per case, ``kept`` (examples kept on the CPU) and
        ``differ`` (examples kept on one device only); 0 is agreement.
    """
    from mmohem.mining import hard_pixel_mask, loss_nms, mine_hard_examples

    def boxes_case(fn):

        def run(dev):
            return fn(random_candidates(images, cands, dev, seed=1))

        return run

    cases = {
        'loss-NMS 0.7 + top-128 per label':
        boxes_case(lambda c: mine_hard_examples(c['losses'], c['valid'], c[
            'is_pos'], c['boxes'], 128, 0.7, c['labels']).kept),
        'with pos_fraction=0.25':
        boxes_case(lambda c: mine_hard_examples(c['losses'], c['valid'], c[
            'is_pos'], c['boxes'], 128, 0.7, c['labels'], 0.25).kept),
        'loss-NMS in chunks of 1000':
        boxes_case(lambda c: loss_nms(
            c['boxes'],
            c['losses'],
            c['valid'],
            0.5,
            c['labels'],
            max_boxes=1000)),
        'pixels, thresh 0.7, min_kept 40000':
        lambda dev: hard_pixel_mask(
            *random_pixels((4, 19, 128, 256), dev, seed=2),
            thresh=0.7,
            min_kept=40000),
    }
    results = {}
    for name, run in cases.items():
        on_cpu, on_device = run('cpu'), run(device).cpu()
        results[name] = dict(
            kept=int(on_cpu.sum()), differ=int((on_cpu ^ on_device).sum()))
    return results
