"""RoI features of the read-only pass, in fewer operations than mmdet's
extractor takes for them.

mmdet's ``SingleRoIExtractor`` finds the RoIs of each pyramid level with a
comparison and a ``nonzero`` (a host read) per level, and adds a zero-valued
term for every level without RoIs, so that each level joins the autograd
graph. A pass without gradient needs neither: :func:`roi_features` sorts
the RoIs by level once, reads the levels' bounds with one host read, pools
each non-empty level from its slice of the sorted RoIs and puts the
features back in the RoIs' order with one copy. The features are the
extractor's (tested equal). On the CPU, mmcv's RoIAlign layers also run
torchvision's multi-threaded kernel inside :func:`read_only_features`.
"""
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator, Optional, Sequence

import torch
from mmcv.ops import RoIAlign
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from torch import Tensor, nn


@lru_cache(maxsize=None)
def _level_bounds(num_levels: int, device: torch.device,
                  dtype: torch.dtype) -> Tensor:
    """``1, ..., num_levels - 1``: where the pyramid levels start on the
    log2 scale of :func:`roi_levels` (a constant, uploaded once)."""
    return torch.arange(1, num_levels, device=device, dtype=dtype)


@lru_cache(maxsize=None)
def _level_ids(num_levels: int, device: torch.device) -> Tensor:
    """``0, ..., num_levels``: the levels whose first sorted RoI
    :func:`roi_features` looks up, and the end (a constant)."""
    return torch.arange(num_levels + 1, device=device)


def roi_levels(rois: Tensor, finest_scale: float, num_levels: int) -> Tensor:
    """The pyramid level of each RoI by mmdet's rule
    (``SingleRoIExtractor.map_roi_levels``): ``floor(log2(sqrt(w * h) /
    finest_scale + 1e-6))``, clamped to ``[0, num_levels - 1]``, with the
    same floating-point steps; the floor, the clamp and the integer
    conversion are one ``bucketize``. Seven operations.

    Args:
        rois (Tensor[N, 5]): ``(batch index, x1, y1, x2, y2)``.
        finest_scale (float): The scale of level 0.
        num_levels (int): Pyramid levels.

    Returns:
        Tensor[N]: Int64 levels.
    """
    sizes = rois[:, 3:] - rois[:, 1:3]
    area = sizes[:, 0] * sizes[:, 1]
    scale = area.sqrt_().div_(finest_scale).add_(1e-6).log2_()
    return torch.bucketize(
        scale, _level_bounds(num_levels, rois.device, rois.dtype), right=True)


def roi_features(extractor: SingleRoIExtractor,
                 feats: Sequence[Tensor],
                 rois: Tensor,
                 roi_scale_factor: Optional[float] = None) -> Tensor:
    """What ``extractor(feats, rois, roi_scale_factor)`` returns, without
    gradient: one sort by level, one host read, one RoIAlign call per
    non-empty level and one copy back to the RoIs' order.

    Args:
        extractor (SingleRoIExtractor): The RoI head's extractor.
        feats (Sequence[Tensor]): Per level, Tensor[B, C, H_l, W_l].
        rois (Tensor[N, 5]): ``(batch index, x1, y1, x2, y2)``.
        roi_scale_factor (float, optional): Scale the RoIs about their
            centres after their levels are found, as the extractor does
            (with one level, the extractor leaves them unscaled).

    Returns:
        Tensor[N, C, h, w]: The RoI features.
    """
    rois = rois.type_as(feats[0])
    layers = extractor.roi_layers
    if len(feats) == 1:
        return layers[0](feats[0], rois)
    if rois.size(0) == 0:
        return feats[0].new_zeros(0, extractor.out_channels,
                                  *layers[0].output_size)
    levels = roi_levels(rois, extractor.finest_scale, len(feats))
    if roi_scale_factor is not None:
        rois = extractor.roi_rescale(rois, roi_scale_factor)
    levels, order = levels.sort()
    starts = _level_ids(len(feats), levels.device)
    bounds = torch.searchsorted(levels, starts).tolist()
    rois = rois[order]
    spans = zip(layers, feats, bounds, bounds[1:])
    pooled = [
        layer(level_feats, rois[start:end])
        for layer, level_feats, start, end in spans if end > start
    ]
    sorted_feats = pooled[0] if len(pooled) == 1 else torch.cat(pooled)
    return sorted_feats.new_empty(sorted_feats.shape).index_copy_(
        0, order, sorted_feats)


def torchvision_kernel(device: torch.device) -> bool:
    """Whether the read-only pass on ``device`` runs mmcv's RoIAlign
    layers on torchvision's kernel: on the CPU."""
    return device.type == 'cpu'


@contextmanager
def read_only_features(extractor: nn.Module,
                       device: torch.device) -> Iterator[None]:
    """Inside, ``extractor`` computes its features for a pass without
    gradient: a ``SingleRoIExtractor`` (not a subclass with its own
    ``forward`` or level rule, nor an instance whose ``forward`` was
    replaced) through :func:`roi_features`, and on the
    CPU its mmcv ``RoIAlign`` layers (average pooling) through
    torchvision's kernel, as ``use_torchvision=True`` makes them: the same
    features (tested) from a multi-threaded kernel where mmcv's CPU kernel
    runs on one thread, several times slower. The training forward keeps
    the config's extractor and kernel.

    Args:
        extractor (nn.Module): The RoI head's (or stage's) extractor.
        device (torch.device): Where the RoIs are.
    """
    lean = (
        isinstance(extractor, SingleRoIExtractor)
        and type(extractor).forward is SingleRoIExtractor.forward
        and type(extractor).map_roi_levels is SingleRoIExtractor.map_roi_levels
        and 'forward' not in vars(extractor))
    swapped = []
    if torchvision_kernel(device):
        swapped = [
            layer for layer in extractor.roi_layers
            if isinstance(layer, RoIAlign) and layer.pool_mode == 'avg'
            and not layer.use_torchvision
        ]
    for layer in swapped:
        layer.use_torchvision = True
    if lean:
        extractor.forward = lambda feats, rois, roi_scale_factor=None: (
            roi_features(extractor, feats, rois, roi_scale_factor))
    try:
        yield
    finally:
        if lean:
            del extractor.forward
        for layer in swapped:
            layer.use_torchvision = False
