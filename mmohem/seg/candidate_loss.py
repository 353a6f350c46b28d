"""Mean cross-entropy of a segmentor over every valid pixel, from one
read-only pass of its decode head (see :mod:`mmohem.det.candidate_loss`
for why OHEM's claim lives there)."""
import torch
import torch.nn.functional as F
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor, nn


def check_segmentor(segmentor: nn.Module) -> None:
    """Raise ``TypeError`` unless ``segmentor`` has a decode head."""
    if getattr(segmentor, 'decode_head', None) is None:
        raise TypeError('candidate loss: a segmentor needs a decode_head, '
                        f'{type(segmentor).__name__} has none.')


def segmentor_candidate_loss(segmentor: nn.Module, inputs: Tensor,
                             data_samples: SampleList) -> Tensor:
    """Mean softmax cross-entropy of the decode head over the pixels whose
    label is not ``ignore_index`` (logits resized to the labels as the
    head's loss does; no class weights, no sampler).

    Run it under :func:`mmohem.utils.read_only`.

    Args:
        segmentor (nn.Module): An ``EncoderDecoder``.
        inputs (Tensor[B, 3, H, W]): Preprocessed images.
        data_samples (list[SegDataSample]): With ``gt_sem_seg``.

    Returns:
        Tensor: 0-dim, float32; 0 when every pixel is ignored.
    """
    head = segmentor.decode_head
    logits = head(segmentor.extract_feat(inputs))
    labels = torch.stack(
        [sample.gt_sem_seg.data.squeeze(0) for sample in data_samples])
    logits = resize(
        logits,
        size=labels.shape[-2:],
        mode='bilinear',
        align_corners=head.align_corners)
    total = F.cross_entropy(
        logits.float(),
        labels.long(),
        ignore_index=head.ignore_index,
        reduction='sum')
    return total / (labels != head.ignore_index).sum().clamp(min=1)
