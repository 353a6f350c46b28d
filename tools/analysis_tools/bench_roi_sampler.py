"""Train-iteration time and peak memory of RoI samplers in Faster R-CNN.

Faster R-CNN R50-FPN (random init), batch 2 at 512x512 by default, on CPU,
with mmdet's RandomSampler, mmdet's OHEMSampler and mmohem's OHEMSampler
with its loss-based NMS on and off; the part time is the time spent inside
``sampler.sample`` per iteration (see bench_common.py for the method).
``--roi-align torchvision`` makes the RoI extractor's mmcv ``RoIAlign`` call
torchvision's kernel (``use_torchvision=True``) in every variant.

``--model demo`` times the demo's Faster R-CNN R18-tiny FPN instead (random
init, batch 8 at 128x128 as ``make demo`` trains it, 4 boxes per image), each
variant with the sampler of its demo config: RandomSampler and mmdet's
OHEMSampler with 64 RoIs per image and a 0.25 positive fraction, mmohem's
with ``num=64`` (and ``nms_thr=None`` for the no-NMS variant).

Usage::

    .venv/bin/python tools/analysis_tools/bench_roi_sampler.py --iters 5 \
        --out roi.json
    .venv/bin/python tools/analysis_tools/bench_roi_sampler.py --model demo \
        --size 128 --batch 8 --warmup 3 --iters 20 --out roi_demo.json
"""
import argparse

from bench_common import main, mmdet_ready, repo_config, time_detector

# The options of the config's RandomSampler, which mmdet's OHEMSampler shares.
UPSTREAM = dict(
    num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)
VARIANTS = {
    'RandomSampler (mmdet)':
    dict(UPSTREAM, type='RandomSampler'),
    'OHEMSampler (mmdet)':
    dict(UPSTREAM, type='OHEMSampler'),
    'mmohem OHEMSampler, NMS 0.7':
    dict(type='mmohem.OHEMSampler', num=512, nms_thr=0.7),
    'mmohem OHEMSampler, no NMS':
    dict(type='mmohem.OHEMSampler', num=512, nms_thr=None),
}
DEMO = 'configs/demo/faster-rcnn_r18-tiny_fpn_{}demo.py'
DEMO_CONFIGS = {
    'RandomSampler (mmdet)': DEMO.format(''),
    'OHEMSampler (mmdet)': DEMO.format('mmdet-ohem_'),
    'mmohem OHEMSampler, NMS 0.7': DEMO.format('ohem_'),
    'mmohem OHEMSampler, no NMS': DEMO.format('ohem_'),
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Build the detector with one sampler and time its training."""
    from mmengine.hub import get_config

    mmdet_ready()
    if args.model == 'demo':
        cfg = repo_config(DEMO_CONFIGS[name])
        if name.endswith('no NMS'):
            cfg.model.train_cfg.rcnn.sampler.nms_thr = None
    else:
        cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
        cfg.model.train_cfg.rcnn.sampler = VARIANTS[name]
    roi_layer = cfg.model.roi_head.bbox_roi_extractor.roi_layer
    roi_layer.use_torchvision = args.roi_align == 'torchvision'
    demo = args.model == 'demo'
    return time_detector(
        cfg.model,
        args,
        4 if demo else 8,
        lambda model: (model.roi_head.bbox_sampler, 'sample'),
        num_classes=cfg.model.roi_head.bbox_head.num_classes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and RoIAlign kernel options."""
    parser.add_argument(
        '--model',
        choices=['r50-fpn', 'demo'],
        default='r50-fpn',
        help="mmdet's R50-FPN Faster R-CNN (default) or the demo's R18-tiny")
    parser.add_argument(
        '--roi-align',
        choices=['mmcv', 'torchvision'],
        default='mmcv',
        help='RoIAlign kernel of the RoI extractor (default: mmcv, as in '
        'the mmdet config)')


if __name__ == '__main__':
    main(__file__, VARIANTS, run_variant,
         __doc__.split('\n\n')[0],
         dict(size=512, batch=2, out='bench_roi_sampler.json'),
         ('sampler', 'sampler'), add_arguments)
