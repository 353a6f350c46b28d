"""Do the RoI head's parameters train under autocast with OHEM?

Autocast caches the low-precision copy of a weight at its first use in the
region; a read-only (no-grad) forward that leaves such a copy behind gives
the training forward a weight without autograd history, and the head does
not train. The check compares, for one training step under autocast, the
RoI-head parameters that get a gradient with the config's own sampler, with
``mmohem.OHEMSampler`` and with mmdet's ``OHEMSampler``.
"""
from typing import Dict, List, Set

import torch
from mmengine.config import ConfigDict
from mmengine.hub import get_config
from torch import nn

OHEM = dict(type='mmohem.OHEMSampler', num=8)
MMDET_OHEM = dict(type='OHEMSampler', num=8, pos_fraction=0.25)
# More boxes than any RPN level set keeps before its NMS (C4: 12000).
RPN_ONE_CALL = 1 << 20


def small_detector(name: str, depth: int = 18) -> ConfigDict:
    """The model of an upstream mmdet config with no pretrained weights,
    with its ResNet-50 made a ResNet-``depth`` (18 or 50).

    Args:
        name (str): Config path under ``mmdet::``, e.g.
            ``'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'``.
        depth (int): 18 shrinks the model for CPU tests (ResNet-18, a C4
            shared head on 4x4 RoI features, one 256-channel conv in a
            Double-Head's and in a mask head); 50 keeps the config's own.

    Returns:
        ConfigDict: The model config.
    """
    model = get_config(f'mmdet::{name}').model
    model.backbone.init_cfg = None
    if depth == 50:
        return model
    model.backbone.depth = depth
    if model.get('neck') is not None:
        model.neck.in_channels = [64, 128, 256, 512]
        bbox_head = model.roi_head.bbox_head
        if isinstance(bbox_head, dict) and bbox_head.get('num_convs'):
            bbox_head.update(num_convs=1, conv_out_channels=256)  # Double
        if model.roi_head.get('mask_head') is not None:
            model.roi_head.mask_head.num_convs = 1
        return model
    # C4: backbone stages 1-3, shared head = stage 4 (R18: 256 -> 512 ch),
    # on 4x4 RoI features (a 2x2 output) instead of 14x14.
    model.backbone.style = 'pytorch'
    model.rpn_head.in_channels = 256
    model.rpn_head.feat_channels = 256
    model.roi_head.shared_head.update(
        depth=depth, style='pytorch', init_cfg=None)
    model.roi_head.bbox_roi_extractor.update(out_channels=256)
    model.roi_head.bbox_roi_extractor.roi_layer.output_size = 4
    model.roi_head.bbox_head.update(in_channels=512, roi_feat_size=2)
    return model


def rpn_nms_in_one_call(model: ConfigDict) -> ConfigDict:
    """Make the RPN's proposal NMS one call of mmcv's ``batched_nms``.

    Above ``split_thr`` boxes (10000 by default) mmcv 2.1's ``batched_nms``
    runs one NMS per level and writes the float32 scores it returns into a
    tensor of the scores' dtype, which under float16 autocast is float16:
    ``Index put requires the source and destination dtypes match``, in
    the RPN, before any RoI sampler runs (upstream, whatever the sampler;
    seen on an H200 in this check, where Faster R-CNN C4's RPN keeps 12000
    boxes). A ``split_thr`` above the RPN's pre-NMS count keeps the
    one-call path, whose scores are float32 throughout.
    """
    proposal = model.train_cfg.rpn_proposal
    proposal.nms.split_thr = max(
        proposal.nms.get('split_thr', 0), RPN_ONE_CALL)
    return model


def set_sampler(model: ConfigDict, sampler: dict) -> ConfigDict:
    """Put ``sampler`` in every RoI stage of ``model``'s ``train_cfg``."""
    rcnn = model.train_cfg.rcnn
    for stage_cfg in rcnn if isinstance(rcnn, list) else [rcnn]:
        stage_cfg.sampler = dict(sampler)
    return model


def roi_head_grads(model: nn.Module,
                   data: dict,
                   dtype: torch.dtype,
                   proposals: int = 16) -> Set[str]:
    """Names of the RoI head's parameters that get a gradient from one
    training step under autocast to ``dtype``.

    On CUDA the whole detector runs under autocast, as
    ``AmpOptimWrapper`` runs it. On the CPU only the RoI head does, where
    the sampler runs (mmcv's CPU ``nms`` in the RPN takes float32 only), on
    the RPN's ``proposals`` best proposals per image: CPUs emulate
    low-precision matrix products slowly.

    Args:
        model (nn.Module): A two-stage detector in train mode.
        data (dict): A preprocessed batch (``inputs``, ``data_samples``).
        dtype (torch.dtype): ``torch.float16`` or ``torch.bfloat16``.
        proposals (int): Proposals per image on the CPU.

    Returns:
        set[str]: Parameter names relative to ``model.roi_head``.
    """
    device = data['inputs'].device.type
    model.zero_grad(set_to_none=True)
    if device == 'cuda':
        with torch.autocast('cuda', dtype=dtype):
            losses = model(**data, mode='loss')
    else:
        feats = model.extract_feat(data['inputs'])
        with torch.no_grad():
            best = [
                found[:proposals] for found in model.rpn_head.predict(
                    feats, data['data_samples'], rescale=False)
            ]
        with torch.autocast(device, dtype=dtype):
            losses = model.roi_head.loss(feats, best, data['data_samples'])
    loss, _ = model.parse_losses(losses)
    loss.backward()
    return {
        name
        for name, p in model.roi_head.named_parameters() if p.grad is not None
    }


def amp_gradient_check(name: str,
                       device: str,
                       dtype: torch.dtype,
                       depth: int = 18,
                       size: int = 128) -> Dict:
    """One autocast step of a detector with three samplers.

    Args:
        name (str): Upstream config path under ``mmdet::``.
        device (str): ``'cuda'`` or ``'cpu'``.
        dtype (torch.dtype): The autocast dtype.
        depth (int): ResNet depth (see :func:`small_detector`).
        size (int): Side of the two square test images.

    Returns:
        dict: ``config``, ``trained`` (RoI-head parameters with a gradient
        under the config's own sampler), ``mmohem_missing`` and
        ``mmdet_missing`` (those left without one by ``mmohem.OHEMSampler``
        and by mmdet's ``OHEMSampler``) and ``ok`` (nothing missing with
        mmohem).
    """
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import DefaultScope

    trained: Dict[str, List[str]] = {}
    with DefaultScope.overwrite_default_scope('mmdet'):
        for arm, sampler in (('baseline', None), ('mmohem', OHEM),
                             ('mmdet', MMDET_OHEM)):
            cfg = rpn_nms_in_one_call(small_detector(name, depth))
            if sampler is not None:
                set_sampler(cfg, sampler)
            torch.manual_seed(0)
            model = MODELS.build(cfg).to(device).train()
            packed = demo_mm_inputs(
                2, (3, size, size),
                num_items=[3, 2],
                num_classes=80,
                with_mask='mask' in name)
            data = model.data_preprocessor(packed, True)
            trained[arm] = sorted(roi_head_grads(model, data, dtype))
    expected = set(trained['baseline'])
    missing = {
        arm: sorted(expected - set(trained[arm]))
        for arm in ('mmohem', 'mmdet')
    }
    return dict(
        config=name,
        dtype=str(dtype).replace('torch.', ''),
        trained=len(expected),
        mmohem_missing=missing['mmohem'],
        mmdet_missing=missing['mmdet'],
        ok=bool(expected) and not missing['mmohem'])
