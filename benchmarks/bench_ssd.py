"""Train-iteration time and peak memory of SSD300: 3:1 mining vs OHEM.

SSD300 VGG16 (random init, 8732 anchors per image), batch 4 at 300x300 by
default, on CPU: mmdet's SSDHead (fixed 3:1 hard negative mining) vs
mmohem's OHEMSSDHead (loss-based NMS over all anchors at IoU 0.7, and with
NMS off), both keeping what configs/ssd/ssd300_ohem_coco.py keeps. The part
time is the time spent inside the head's ``loss_by_feat`` per iteration
(targets, mining and losses; see bench_common.py for the method).

Usage::

    .venv/bin/python benchmarks/bench_ssd.py --iters 5 --out ssd.json
"""
import argparse

from bench_common import image_size, main

from mmohem.benchmark.timing import time_training

VARIANTS = {
    'SSDHead (mmdet, 3:1)': None,
    'mmohem OHEMSSDHead, NMS 0.7': 0.7,
    'mmohem OHEMSSDHead, no NMS': None,
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Build SSD300 with one head and time its training."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.hub import get_config

    import mmohem  # noqa: F401
    register_all_modules()
    torch.manual_seed(0)
    if name.startswith('SSDHead'):
        cfg = get_config('mmdet::ssd/ssd300_coco.py')
    else:
        cfg = Config.fromfile('configs/ssd/ssd300_ohem_coco.py')
        cfg.model.train_cfg.sampler.nms_thr = VARIANTS[name]
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(args.device).train()
    packed = demo_mm_inputs(
        args.batch, (3, *image_size(args.size)),
        num_items=[6] * args.batch,
        num_classes=80)
    data = model.data_preprocessor(packed, True)
    return time_training(model, data, model.bbox_head, 'loss_by_feat',
                         args.warmup, args.iters)


if __name__ == '__main__':
    main(__file__, VARIANTS, run_variant,
         __doc__.split('\n\n')[0],
         dict(size=300, batch=4, out='bench_ssd.json'), ('head', 'loss'))
