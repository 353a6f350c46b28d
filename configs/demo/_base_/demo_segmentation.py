# Data and runtime shared by the segmentation demo configs: the
# label maps of the embedded demo scenes (mmohem.demo.generate), 128x128
# images, background + 3 classes.
_base_ = ['mmseg::_base_/default_runtime.py', './demo_schedule.py']
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

# Relative to this file, i.e. <repo>/data/mmohem_demo/; tools/benchmark.py
# overrides it with --data-root.
data_root = '{{ fileDirname }}/../../../data/mmohem_demo/'
image_size = (128, 128)
batch_size = 8

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
metainfo = dict(
    classes=('background', 'ellipse', 'triangle', 'star'),
    palette=[(0, 0, 0), (220, 20, 60), (0, 128, 0), (0, 0, 230)])
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.png',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='train/images', seg_map_path='train/labels'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='val/images', seg_map_path='val/labels'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU and the share of distractor pixels claimed for a class.
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='mmohem.DistractorPixelMetric',
        ann_file=data_root + 'annotations/val_distractors.json',
        background=0),
]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(
        type='LoggerHook',
        interval={{_base_.log_interval}},
        log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval={{_base_.max_iters}}))
log_processor = {{_base_.demo_log_processor}}
custom_hooks = [{{_base_.candidate_loss_hook}}]
