"""Train-iteration time and peak memory of SSD300: 3:1 mining vs OHEM.

SSD300 VGG16 (random init, 8732 anchors per image), batch 4 at 300x300 by
default, on CPU: mmdet's SSDHead (fixed 3:1 hard negative mining) vs
mmohem's OHEMSSDHead (loss-based NMS over all anchors at IoU 0.7, and with
NMS off), both keeping what configs/ssd/ssd300_mmohem-ohem_coco.py keeps.
The part time is the time spent inside the head's ``loss_by_feat`` per
iteration (targets, mining and losses; see bench_common.py for the method).

Usage::

    .venv/bin/python tools/analysis_tools/bench_ssd.py --iters 5 --out ssd.json
"""
import argparse

from bench_common import main, time_dense_head

VARIANTS = {
    'SSDHead (mmdet, 3:1)': None,
    'mmohem OHEMSSDHead, NMS 0.7': 0.7,
    'mmohem OHEMSSDHead, no NMS': None,
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Build SSD300 with one head and time its training."""
    if name.startswith('SSDHead'):
        return time_dense_head(args, 6, upstream='ssd/ssd300_coco.py')
    return time_dense_head(
        args,
        6,
        ohem='configs/ssd/ssd300_mmohem-ohem_coco.py',
        nms_thr=VARIANTS[name])


if __name__ == '__main__':
    main(__file__, VARIANTS, run_variant,
         __doc__.split('\n\n')[0],
         dict(size=300, batch=4, out='bench_ssd.json'), ('head', 'loss'))
