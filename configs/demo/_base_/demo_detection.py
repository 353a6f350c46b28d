# Data and runtime shared by the detection demo configs: the
# embedded demo scenes (mmohem.demo.generate), 128x128 images, 3 classes.
_base_ = ['mmdet::_base_/default_runtime.py', './demo_schedule.py']
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

# Relative to this file, i.e. <repo>/data/mmohem_demo/; tools/benchmark.py
# overrides it with --data-root.
data_root = '{{ fileDirname }}/../../../data/mmohem_demo/'
classes = ('ellipse', 'triangle', 'star')
image_size = (128, 128)
batch_size = 8

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
metainfo = dict(
    classes=classes, palette=[(220, 20, 60), (0, 128, 0), (0, 0, 230)])
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/images/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/images/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# COCO AP (classwise: the rare star's AP) and the confident detections on
# the unlabelled distractors (the hard negatives OHEM should learn to drop).
val_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/val.json',
        metric='bbox',
        classwise=True,
        format_only=False),
    dict(
        type='mmohem.DistractorFPMetric',
        ann_file=data_root + 'annotations/val_distractors.json',
        score_thr=0.3,
        iou_thr=0.5),
]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(type='LoggerHook', interval={{_base_.log_interval}}),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval={{_base_.max_iters}}))
log_processor = {{_base_.demo_log_processor}}
custom_hooks = [{{_base_.candidate_loss_hook}}]
