"""Where the OHEM read-only forward of an RoI head spends its time, on CPU.

Faster R-CNN R50-FPN (random init), one 512x512 image: the median time of
the RoI extractor (RoIAlign over the FPN levels) and of the box head (two
1024-wide FC layers and the predictors) over ``--rois`` random boxes under
``torch.no_grad()``, i.e. the two halves of what ``mmohem.OHEMSampler``
runs per image to score every candidate, with mmcv's and torchvision's
RoIAlign kernels, and the largest difference between their RoI features.

Usage::

    .venv/bin/python tools/analysis_tools/profile_roi_forward.py --rois 1008
"""
import argparse

from mmohem.benchmark.timing import time_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rois', type=int, default=1008)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()

    import torch
    from mmdet.registry import MODELS
    from mmdet.structures.bbox import bbox2roi
    from mmdet.utils import register_all_modules
    from mmengine.hub import get_config

    register_all_modules()
    torch.manual_seed(0)
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    roi_head = model.roi_head
    extractor = roi_head.bbox_roi_extractor
    corners = torch.rand(args.rois, 2) * (args.size - 100)
    sizes = torch.rand(args.rois, 2) * 200 + 8
    rois = bbox2roi(
        [torch.cat([corners, (corners + sizes).clamp(max=args.size)], 1)])
    print(f'{args.rois} RoIs, one {args.size}x{args.size} image, '
          f'{torch.get_num_threads()} threads, no grad')
    print('| RoIAlign kernel | RoI extractor ms | box head ms | max abs '
          'difference to mmcv |')
    print('|---|---|---|---|')
    reference = None
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, args.size, args.size))
        levels = feats[:extractor.num_inputs]
        for kernel in ('mmcv', 'torchvision'):
            for layer in extractor.roi_layers:
                layer.use_torchvision = kernel == 'torchvision'
            roi_feats = extractor(levels, rois)
            if reference is None:
                reference = roi_feats
            extract = time_case(lambda: extractor(levels, rois), 1,
                                args.repeats)['median_ms']
            head = time_case(lambda: roi_head.bbox_head(roi_feats), 1,
                             args.repeats)['median_ms']
            difference = (roi_feats - reference).abs().max().item()
            print(f'| {kernel} | {extract:.0f} | {head:.0f} | '
                  f'{difference:.1e} |')


if __name__ == '__main__':
    main()
