# PSPNet, dilated ResNet-18-V1c with 16 base channels (pretrained on crops
# of the demo world: checkpoints/demo/resnetv1c18-tiny.json), on the label
# maps of the embedded demo scenes: the baseline of the demo's segmentation
# pair.
_base_ = './_base_/demo_segmentation.py'

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(128, 128)),
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=32,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='{{ fileDirname }}/../../checkpoints/demo/'
            'resnetv1c18-tiny.pth')),
    decode_head=dict(
        type='PSPHead',
        in_channels=128,
        in_index=3,
        channels=64,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# Learning rate chosen on this baseline alone, before any OHEM arm ran: the
# best of AdamW 1e-3 / 2e-3 / 4e-3 / 8e-3 (seed 0, 800 iterations, demo val:
# mIoU 35.90 / 37.53 / 50.22 / 47.56); every arm of the experiment inherits it.
optim_wrapper = dict(optimizer=dict(lr=4e-3))
