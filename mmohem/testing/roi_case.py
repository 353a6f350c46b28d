"""One RoI sampling step of a Faster R-CNN FPN head, for any sampler.

The step is what ``StandardRoIHead.loss`` runs between assignment and the
bbox head's training forward: ``bbox_sampler.sample`` for each image of the
batch, on that image's features, and (for mmohem's sampler) the publication
of the iteration's mining statistics. Proposals, ground truth and features
are made once; each run of the step starts from fresh copies of the
assignments (sampling adds the ground truth to them). mmohem's read-only
pass keeps mmcv's RoIAlign kernel in the step, as it does on CUDA (on the CPU
it runs torchvision's): a CPU counts the path CUDA runs.
"""
import copy
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmohem.det import roi_features
from .amp_grads import set_sampler, small_detector

FPN_CONFIG = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


def random_proposals(num: int, size: int, generator: torch.Generator,
                     device: str) -> Tensor:
    """``num`` upright boxes (Tensor[num, 4]) inside a ``size`` square."""
    corners = torch.rand(num, 2, 2, generator=generator) * size
    lo, hi = corners.min(1).values, corners.max(1).values
    return torch.cat([lo, hi + 2.], 1).clamp(max=size).to(device)


def roi_sampling_step(sampler: dict,
                      images: int = 2,
                      proposals: int = 2000,
                      gts: int = 8,
                      size: int = 256,
                      device: str = 'cpu') -> 'RoISamplingStep':
    """The sampling step of a ResNet-18 FPN Faster R-CNN RoI head.

    Args:
        sampler (dict): ``train_cfg.rcnn.sampler`` of the config.
        images (int): Images in the batch.
        proposals (int): Proposals per image.
        gts (int): Ground-truth boxes per image.
        size (int): Side of the square images.
        device (str): Where the step runs.

    Returns:
        RoISamplingStep: The step.
    """
    from mmdet.registry import MODELS
    from mmengine.logging import MessageHub
    from mmengine.registry import DefaultScope

    cfg: ConfigDict = set_sampler(small_detector(FPN_CONFIG), sampler)
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg).to(device).train()
    head = model.roi_head
    generator = torch.Generator().manual_seed(0)
    feats = tuple(
        torch.randn(images, 256, size // s, size //
                    s, generator=generator).to(device) for s in (4, 8, 16, 32))
    cases = []
    for _ in range(images):
        gt = InstanceData(
            bboxes=random_proposals(gts, size, generator, device),
            labels=torch.randint(80, (gts, ), generator=generator).to(device))
        found = InstanceData(
            priors=torch.cat([
                gt.bboxes +
                torch.randn(gts, 4, generator=generator).to(device),
                random_proposals(proposals - gts, size, generator, device)
            ]))
        cases.append((found, gt, head.bbox_assigner.assign(found, gt)))
    MessageHub.get_instance('mmohem_roi_case')
    return RoISamplingStep(head, feats, cases)


class RoISamplingStep:
    """A RoI head's sampling of one batch; call :meth:`prepare` before each
    run (it copies the assignments, outside what a counter sees).

    Args:
        head (nn.Module): The RoI head.
        feats (tuple[Tensor]): Per level, Tensor[B, 256, H, W].
        cases (list[tuple]): Per image, proposals, ground truth and their
            assignment.
    """

    def __init__(self, head, feats: Tuple[Tensor, ...],
                 cases: List[Tuple]) -> None:
        self.head = head
        self.feats = feats
        self.cases = cases
        self._ready: List[Tuple] = []

    def prepare(self) -> None:
        """Fresh copies of the assignments, which sampling changes."""
        self._ready = [(found, gt, copy.deepcopy(assigned))
                       for found, gt, assigned in self.cases]

    def __call__(self) -> List:
        if not self._ready:
            self.prepare()
        ready, self._ready = self._ready, []
        sampler = self.head.bbox_sampler
        with mmcv_roi_kernel():
            results = [
                sampler.sample(
                    assigned,
                    found,
                    gt,
                    feats=[f[i][None] for f in self.feats])
                for i, (found, gt, assigned) in enumerate(ready)
            ]
        publish = getattr(sampler, 'publish', None)
        if publish is not None:
            publish()
        return results


@contextmanager
def mmcv_roi_kernel() -> Iterator[None]:
    """Inside, mmohem's read-only pass keeps mmcv's RoIAlign kernel on every
    device, as it does on CUDA."""
    chosen = roi_features.torchvision_kernel
    roi_features.torchvision_kernel = lambda device: False
    try:
        yield
    finally:
        roi_features.torchvision_kernel = chosen
