"""Train-iteration time and peak memory of RetinaNet: focal loss vs OHEM.

RetinaNet R50-FPN (random init), batch 2 at 512x512 by default: mmdet's
RetinaHead with its focal loss (the baseline) vs mmohem's OHEMRetinaHead as
configs/retinanet/retinanet_r50_fpn_mmohem-ohem_1x_coco.py trains it (sigmoid
cross-entropy, 128 anchors per image after a loss-based NMS at IoU 0.5),
and the same without the NMS. The part time is the time spent inside the
head's ``loss_by_feat`` per iteration (targets, mining and losses; see
bench_common.py for the method).

Usage::

    .venv/bin/python tools/analysis_tools/bench_retina.py --iters 5 \
        --out retina.json
"""
import argparse

from bench_common import main, time_dense_head

VARIANTS = {
    'RetinaHead (mmdet, focal loss)': None,
    'mmohem OHEMRetinaHead, NMS 0.5': 0.5,
    'mmohem OHEMRetinaHead, no NMS': None,
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Build RetinaNet with one head and time its training."""
    if name.startswith('RetinaHead'):
        return time_dense_head(
            args, 8, upstream='retinanet/retinanet_r50_fpn_1x_coco.py')
    return time_dense_head(
        args,
        8,
        ohem='configs/retinanet/retinanet_r50_fpn_mmohem-ohem_1x_coco.py',
        nms_thr=VARIANTS[name])


if __name__ == '__main__':
    main(__file__, VARIANTS, run_variant,
         __doc__.split('\n\n')[0],
         dict(size=512, batch=2, out='bench_retina.json'), ('head', 'loss'))
