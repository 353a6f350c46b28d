"""The pixel mining steps of a segmentation head, mmohem's beside mmseg's.

A batch of logits and labels like a Cityscapes crop's (:func:`pixel_batch`),
and on it the steps whose launches are counted: the pixel sampler against
mmseg's ``OHEMPixelSampler`` (no gradient) and the loss flavour against
mmseg's own OHEM loss, ``OhemCrossEntropy``, and its plain
``CrossEntropyLoss`` (forward and backward). mmohem's steps run on
either path of :func:`mmohem.mining.pixel.pixel_path`, whatever the device
(:func:`forced_pixel_path`), so that a CPU counts what CUDA runs.
"""
import contextlib
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses import OhemCrossEntropy as MMSegOhemCrossEntropy
from mmseg.structures import SegDataSample
from mmseg.structures.sampler import OHEMPixelSampler
from torch import Tensor

from mmohem.mining import pixel
from mmohem.seg import OhemCrossEntropyLoss, OhemCrossEntropySampler

#: Logit regimes: ``random`` leaves nearly every pixel hard (early
#: training), ``confident`` about 6% (late training: ``min_kept`` decides
#: and the selection runs).
REGIMES = ('random', 'confident')
IGNORE_INDEX = 255


def pixel_batch(shape: Sequence[int],
                regime: str,
                requires_grad: bool = False,
                device: str = 'cpu') -> Tuple[Tensor, Tensor]:
    """Seeded logits and labels with about 12% ignored pixels (the bottom
    tenth of each image, the ego vehicle, and 2% scattered), made on the CPU
    and moved to ``device``.

    Args:
        shape (Sequence[int]): ``(B, C, H, W)`` of the logits.
        regime (str): One of :data:`REGIMES`: ``'confident'`` boosts the true
            class's logit by 6 on 95% of the pixels.
        requires_grad (bool): Whether the logits require a gradient.
        device (str): Where the tensors go.

    Returns:
        tuple[Tensor, Tensor]: Logits Tensor[B, C, H, W] and labels
        Tensor[B, H, W] (int64, :data:`IGNORE_INDEX` ignored).
    """
    if regime not in REGIMES:
        raise ValueError(f'regime must be one of {REGIMES}, got {regime!r}')
    gen = torch.Generator().manual_seed(0)
    b, c, h, w = shape
    labels = torch.randint(0, c, (b, h, w), generator=gen)
    labels[:, h - h // 10:] = IGNORE_INDEX
    labels[torch.rand(b, h, w, generator=gen) < 0.02] = IGNORE_INDEX
    logits = torch.randn(tuple(shape), generator=gen)
    if regime == 'confident':
        boost = 6. * (torch.rand(b, 1, h, w, generator=gen) > 0.05)
        logits.scatter_add_(1, labels.clamp(max=c - 1)[:, None], boost)
    logits, labels = logits.to(device), labels.to(device)
    return logits.requires_grad_(requires_grad), labels


@contextlib.contextmanager
def forced_pixel_path(path: str) -> Iterator[None]:
    """Run mmohem's pixel mining on ``path`` (``'cpu'`` or ``'cuda'``)
    whatever the device of its tensors, inside the context."""
    if path not in pixel.CHUNK_BYTES:
        raise ValueError(
            f'path must be one of {tuple(pixel.CHUNK_BYTES)}, got {path!r}')
    chosen = pixel.pixel_path
    pixel.pixel_path = lambda device: path
    try:
        yield
    finally:
        pixel.pixel_path = chosen


def on_path(step: Callable[[], object], path: str) -> Callable[[], None]:
    """``step`` run under :func:`forced_pixel_path`."""

    def run() -> None:
        with forced_pixel_path(path):
            step()

    return run


class DecodeHead:
    """What a pixel sampler reads from its decode head."""
    ignore_index = IGNORE_INDEX
    loss_decode = CrossEntropyLoss()


def sampler_steps(logits: Tensor, labels: Tensor,
                  **options) -> Dict[str, Callable[[], None]]:
    """mmseg's ``OHEMPixelSampler`` and mmohem's sampler on both paths,
    without gradient.

    Args:
        logits (Tensor[B, C, H, W]): Class scores.
        labels (Tensor[B, H, W]): Class index of each pixel.
        **options: ``thresh`` and ``min_kept`` of both samplers.

    Returns:
        dict[str, Callable]: Arm name -> step.
    """
    ours = OhemCrossEntropySampler(DecodeHead(), **options)
    theirs = OHEMPixelSampler(DecodeHead(), **options)
    seg_label = labels[:, None]

    def sample(sampler) -> Callable[[], None]:
        return torch.no_grad()(lambda: sampler.sample(logits, seg_label))

    return {
        'mmseg OHEMPixelSampler': sample(theirs),
        'mmohem sampler, CUDA path': on_path(sample(ours), 'cuda'),
        'mmohem sampler, CPU path': on_path(sample(ours), 'cpu'),
    }


def loss_steps(logits: Tensor, labels: Tensor, thresh: float,
               min_kept: int) -> Dict[str, Callable[[], None]]:
    """mmseg's own OHEM loss (``OhemCrossEntropy``, PIDNet's, with
    ``min_kept`` for the batch), its ``CrossEntropyLoss``
    (``avg_non_ignore``, no mining) and mmohem's loss flavour on both
    paths, forward and backward.

    Args:
        logits (Tensor[B, C, H, W]): Class scores that require a gradient.
        labels (Tensor[B, H, W]): Class index of each pixel.
        thresh (float): Probability below which a pixel is hard.
        min_kept (int): Pixels kept at least per image.

    Returns:
        dict[str, Callable]: Arm name -> step.
    """

    def train(loss, **kwargs) -> Callable[[], None]:

        def step() -> None:
            logits.grad = None
            loss(logits, labels, **kwargs).backward()

        return step

    ours = train(
        OhemCrossEntropyLoss(thresh=thresh, min_kept=min_kept),
        ignore_index=IGNORE_INDEX)
    mmseg_ohem = MMSegOhemCrossEntropy(
        thres=thresh,
        min_kept=len(logits) * min_kept,
        ignore_label=IGNORE_INDEX)
    plain = CrossEntropyLoss(avg_non_ignore=True)
    return {
        'mmseg OhemCrossEntropy loss': train(mmseg_ohem),
        'mmseg CrossEntropyLoss': train(plain, ignore_index=IGNORE_INDEX),
        'mmohem loss, CUDA path': on_path(ours, 'cuda'),
        'mmohem loss, CPU path': on_path(ours, 'cpu'),
    }


def seg_data_samples(labels: Tensor) -> List[SegDataSample]:
    """One mmseg data sample per label map, its ``gt_sem_seg`` and image
    shape set.

    Args:
        labels (Tensor[B, H, W]): Class index of each pixel.
    """
    h, w = labels.shape[-2:]
    return [
        SegDataSample(
            gt_sem_seg=PixelData(data=label[None]),
            metainfo=dict(img_shape=(h, w), pad_shape=(h, w)))
        for label in labels
    ]
