"""One loss step of a dense head, mmohem's OHEM head beside mmdet's own.

Each case builds both heads from their configs (mmdet's and mmohem's, which
differ only in the head type, the classification loss and
``train_cfg.sampler``), makes random head outputs of the right shapes and a
few ground-truth boxes per image, and returns two :class:`DenseLossStep`
callables that run ``loss_by_feat`` on the same inputs: ``(ours,
upstream)``. Count them with :func:`mmohem.testing.launches.count_launches`.
"""
import os.path as osp
from typing import List, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmengine.structures import InstanceData
from torch import Tensor, nn

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')
SSD = ('ssd/ssd300_coco.py', 'ssd/ssd300_mmohem-ohem_coco.py', 300,
       (38, 19, 10, 5, 3, 1))
RETINA = ('retinanet/retinanet_r50_fpn_1x_coco.py',
          'retinanet/retinanet_r50_fpn_mmohem-ohem_1x_coco.py', 320,
          (40, 20, 10, 5, 3))


class DenseLossStep:
    """One head's ``loss_by_feat`` on fixed inputs; calling it runs it.

    Args:
        head (nn.Module): The dense head.
        cls_scores (list[Tensor]): Per level, Tensor[B, K * C, H, W].
        bbox_preds (list[Tensor]): Per level, Tensor[B, K * 4, H, W].
        batch_gt_instances (list[InstanceData]): Per image ground truth.
        batch_img_metas (list[dict]): Per image meta information.
    """

    def __init__(self, head: nn.Module, cls_scores: List[Tensor],
                 bbox_preds: List[Tensor],
                 batch_gt_instances: List[InstanceData],
                 batch_img_metas: List[dict]) -> None:
        self.head = head
        self.inputs = (cls_scores, bbox_preds, batch_gt_instances,
                       batch_img_metas)

    def __call__(self) -> dict:
        return self.head.loss_by_feat(*self.inputs)


def ssd_case(images: int = 2,
             gts: int = 4,
             device: str = 'cpu') -> Tuple[DenseLossStep, DenseLossStep]:
    """SSD300 (8732 anchors per image): ``mmohem.OHEMSSDHead`` and
    mmdet's ``SSDHead``.

    Args:
        images (int): Images in the batch.
        gts (int): Ground-truth boxes per image (0 for a background batch).
        device (str): Where the step runs.

    Returns:
        tuple[DenseLossStep, DenseLossStep]: The OHEM head's loss step
        and upstream's.
    """
    return _dense_case(*SSD, images, gts, device)


def retina_case(images: int = 2,
                gts: int = 4,
                device: str = 'cpu') -> Tuple[DenseLossStep, DenseLossStep]:
    """RetinaNet at 320x320 (5 levels, 19206 anchors per image):
    ``mmohem.OHEMRetinaHead`` (sigmoid cross-entropy) and mmdet's
    ``RetinaHead`` (focal loss). Arguments and result: :func:`ssd_case`'s.
    """
    return _dense_case(*RETINA, images, gts, device)


#: The heads :func:`small_retinanet` builds: ``OHEMRetinaHead`` with sigmoid
#: CE, a plain ``OHEMAnchorHead`` with softmax CE, and ``OHEMRetinaHead``
#: regressing decoded boxes with GIoU.
RETINA_VARIANTS = ('sigmoid', 'softmax', 'giou')


def small_retinanet(variant: str = 'sigmoid', **sampler) -> nn.Module:
    """A ResNet-18 RetinaNet of 5 classes from mmohem's RetinaNet config,
    in train mode, seeded.

    Args:
        variant (str): One of :data:`RETINA_VARIANTS`.
        **sampler: Options merged into ``train_cfg.sampler``.
    """
    from mmdet.registry import MODELS

    import mmohem  # noqa: F401 (registers the mmohem heads)
    if variant not in RETINA_VARIANTS:
        raise ValueError(
            f'variant must be one of {RETINA_VARIANTS}, got {variant!r}')
    cfg = Config.fromfile(osp.join(CONFIGS, RETINA[1])).model
    cfg.backbone.update(depth=18, init_cfg=None)
    cfg.neck.in_channels = [64, 128, 256, 512]
    head = cfg.bbox_head
    head.update(num_classes=5, stacked_convs=1, feat_channels=64)
    if variant == 'softmax':
        head.pop('stacked_convs')
        head.update(
            type='mmohem.OHEMAnchorHead',
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))
    elif variant == 'giou':
        head.update(
            reg_decoded_bbox=True,
            loss_bbox=dict(type='GIoULoss', loss_weight=2.0))
    cfg.train_cfg.sampler.update(sampler)
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def demo_batch(model: nn.Module,
               num_items: Sequence[int],
               size: int = 128,
               num_classes: int = 5) -> dict:
    """A preprocessed batch of mmdet's ``demo_mm_inputs``: one image of
    ``size`` x ``size`` per entry of ``num_items``, with that many boxes."""
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(
        len(num_items), (3, size, size),
        num_items=list(num_items),
        num_classes=num_classes)
    return model.data_preprocessor(packed, True)


def build_head(config: ConfigDict, device: str) -> nn.Module:
    """The bbox head of a detector config, with its ``train_cfg``."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    import mmohem  # noqa: F401 (registers the mmohem heads)
    register_all_modules(init_default_scope=False)
    head_cfg = config.model.bbox_head.copy()
    head_cfg.update(train_cfg=config.model.train_cfg)
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        head = MODELS.build(head_cfg)
    return head.to(device).train()


def random_gt(images: int, gts: int, size: int, num_classes: int,
              generator: torch.Generator, device: str) -> List[InstanceData]:
    """``gts`` upright boxes of 20 to 120 pixels per image, random labels."""
    batch = []
    for _ in range(images):
        corner = torch.rand(gts, 2, generator=generator) * (size - 120)
        side = 20 + torch.rand(gts, 2, generator=generator) * 100
        batch.append(
            InstanceData(
                bboxes=torch.cat([corner, corner + side], 1).to(device),
                labels=torch.randint(
                    num_classes, (gts, ), generator=generator).to(device)))
    return batch


def _dense_case(upstream: str, ours: str, size: int, sides: Sequence[int],
                images: int, gts: int,
                device: str) -> Tuple[DenseLossStep, DenseLossStep]:
    """Both heads' loss steps on shared random outputs."""
    from mmengine.logging import MessageHub

    heads = [
        build_head(Config.fromfile(osp.join(CONFIGS, ours)), device),
        build_head(get_config(f'mmdet::{upstream}'), device)
    ]
    generator = torch.Generator().manual_seed(0)
    outputs = _random_outputs(heads[1], images, sides, generator, device)
    batch_gt = random_gt(images, gts, size, heads[1].num_classes, generator,
                         device)
    metas = [
        dict(img_shape=(size, size), pad_shape=(size, size))
        for _ in range(images)
    ]
    MessageHub.get_instance('mmohem_dense_case')
    return tuple(
        DenseLossStep(head, *outputs, batch_gt, metas) for head in heads)


def _random_outputs(head: nn.Module, images: int, sides: Sequence[int],
                    generator: torch.Generator,
                    device: str) -> Tuple[List[Tensor], List[Tensor]]:
    """Random ``cls_scores`` and ``bbox_preds`` of a head, per level
    Tensor[B, K * C, H, W] and Tensor[B, K * 4, H, W], requiring grad."""
    cls_scores, bbox_preds = [], []
    for side, anchors in zip(sides, head.prior_generator.num_base_priors):
        cls_scores.append(
            torch.randn(
                images,
                anchors * head.cls_out_channels,
                side,
                side,
                generator=generator).to(device).requires_grad_())
        bbox_preds.append(
            (0.1 *
             torch.randn(images, anchors * 4, side, side,
                         generator=generator)).to(device).requires_grad_())
    return cls_scores, bbox_preds
