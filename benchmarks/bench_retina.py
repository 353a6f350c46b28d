"""Train-iteration time and peak memory of RetinaNet: focal loss vs OHEM.

RetinaNet R50-FPN (random init), batch 2 at 512x512 by default: mmdet's
RetinaHead with its focal loss (the baseline) vs mmohem's OHEMRetinaHead as
configs/retinanet/retinanet_r50_fpn_ohem_1x_coco.py trains it (sigmoid
cross-entropy, 128 anchors per image after a loss-based NMS at IoU 0.5),
and the same without the NMS. The part time is the time spent inside the
head's ``loss_by_feat`` per iteration (targets, mining and losses; see
bench_common.py for the method).

Usage::

    .venv/bin/python benchmarks/bench_retina.py --iters 5 --out retina.json
"""
import argparse

from bench_common import image_size, main

from mmohem.benchmark.timing import time_training

VARIANTS = {
    'RetinaHead (mmdet, focal loss)': None,
    'mmohem OHEMRetinaHead, NMS 0.5': 0.5,
    'mmohem OHEMRetinaHead, no NMS': None,
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Build RetinaNet with one head and time its training."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.hub import get_config

    import mmohem  # noqa: F401
    register_all_modules()
    torch.manual_seed(0)
    if name.startswith('RetinaHead'):
        cfg = get_config('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')
    else:
        cfg = Config.fromfile('configs/retinanet/'
                              'retinanet_r50_fpn_ohem_1x_coco.py')
        cfg.model.train_cfg.sampler.nms_thr = VARIANTS[name]
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(args.device).train()
    packed = demo_mm_inputs(
        args.batch, (3, *image_size(args.size)),
        num_items=[8] * args.batch,
        num_classes=80)
    data = model.data_preprocessor(packed, True)
    return time_training(model, data, model.bbox_head, 'loss_by_feat',
                         args.warmup, args.iters)


if __name__ == '__main__':
    main(__file__, VARIANTS, run_variant,
         __doc__.split('\n\n')[0],
         dict(size=512, batch=2, out='bench_retina.json'), ('head', 'loss'))
