# retinanet_r50_fpn_1x_coco.py with OHEM in place of the focal loss, as the
# OHEM rows of the Focal Loss paper (Lin et al., ICCV 2017, Table 1d): plain
# sigmoid cross-entropy, and per image the 128 anchors of highest loss (cls +
# box) after a loss-based NMS at IoU 0.5, the paper's best OHEM setting (32.8
# AP with R-101-FPN at 600 px, against 36.0 with focal loss). The head type,
# its loss_cls and train_cfg.sampler are the only changes. The paper's other
# rows: num=256 or 512, nms_thr=0.7; its "OHEM 1:3" rows: nms_thr=None,
# pos_fraction=0.25 (docs/detection.md).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='mmohem.OHEMRetinaHead',
        loss_cls=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0)),
    train_cfg=dict(
        sampler=dict(
            _delete_=True, type='mmohem.OHEMSampler', num=128, nms_thr=0.5)))
