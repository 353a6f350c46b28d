# The demo detectors' input normalisation and backbone: ResNet-18 with 16
# base channels, pretrained on crops of the demo world by
# tools/pretrain_demo_backbones.py (checkpoints/demo/resnet18-tiny.json says
# how), as the paper's detectors start from ImageNet (Faster R-CNN and
# RetinaNet demos).
model = dict(
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{ fileDirname }}/../../../checkpoints/demo/'
            'resnet18-tiny.pth')))
