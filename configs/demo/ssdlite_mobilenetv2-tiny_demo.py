# SSDlite, MobileNetV2 x0.5 (pretrained on crops of the demo world:
# checkpoints/demo/mobilenetv2-tiny.json) at 128x128, on the embedded demo
# scenes: the baseline of the demo's SSD pair, with SSD's own
# 3:1 hard negative mining. mmohem.SSDHead is mmdet's SSDHead plus the one
# attribute mmdet 3.3 needs to evaluate it (open-mmlab/mmdetection#11780).
_base_ = './_base_/demo_detection.py'

norm_cfg = dict(type='BN', eps=0.001, momentum=0.03)
channels = (16, 48, 96, 96)
model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='MobileNetV2',
        widen_factor=0.5,
        out_indices=(2, 4),
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{ fileDirname }}/../../checkpoints/demo/'
            'mobilenetv2-tiny.pth')),
    neck=dict(
        type='SSDNeck',
        in_channels=channels[:2],
        out_channels=channels,
        level_strides=(2, 2),
        level_paddings=(1, 1),
        l2_norm_scale=None,
        use_depthwise=True,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(type='TruncNormal', layer='Conv2d', std=0.03)),
    bbox_head=dict(
        type='mmohem.SSDHead',
        in_channels=channels,
        num_classes=3,
        use_depthwise=True,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.001),
        anchor_generator=dict(
            type='SSDAnchorGenerator',
            scale_major=False,
            strides=[8, 16, 32, 64],
            ratios=[[2], [2, 3], [2, 3], [2]],
            min_sizes=[10, 24, 48, 80],
            max_sizes=[24, 48, 80, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=400,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.02,
        max_per_img=50))

# Learning rate chosen on this baseline alone, before any OHEM arm ran: the
# best of AdamW 1e-3 / 2e-3 / 4e-3 / 8e-3 (seed 0, 800 iterations, demo val:
# bbox mAP 4.7 / 5.7 / 5.9 / 4.5); every arm of the experiment inherits it.
optim_wrapper = dict(optimizer=dict(lr=4e-3))
