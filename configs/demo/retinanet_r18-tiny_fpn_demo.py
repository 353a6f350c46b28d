# RetinaNet, ResNet-18 with 16 base channels (pretrained on crops of the demo
# world) + FPN, with its focal loss, on the embedded demo scenes: the
# baseline of the demo's dense-head experiment (tools/benchmark.py --demo
# --experiments retinanet), against GHM-C and mmohem's OHEM.
_base_ = ['./_base_/demo_detection.py', './_base_/r18_tiny.py']

model = dict(
    type='RetinaNet',
    neck=dict(
        type='FPN',
        in_channels=[16, 32, 64, 128],
        out_channels=64,
        start_level=1,
        add_extra_convs='on_input',
        num_outs=4),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=3,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=3,
            scales_per_octave=2,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=400,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=50))

# Learning rate chosen on this baseline alone, before any other arm ran: the
# best of AdamW 5e-4 / 1e-3 / 2e-3 / 4e-3 (seed 0, 800 iterations, demo val:
# bbox mAP 4.4 / 5.6 / 4.3 / no box above the score threshold); every arm of
# the experiment inherits it.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
