# The OHEM twin of retinanet_r18-tiny_fpn_demo.py, as the Focal Loss paper's
# best OHEM row (configs/retinanet/retinanet_r50_fpn_mmohem-ohem_1x_coco.py):
# sigmoid cross-entropy instead of the focal loss, and per image the 128
# anchors of highest loss after a loss-based NMS at IoU 0.5. The paper's
# direction is focal loss ahead.
_base_ = './retinanet_r18-tiny_fpn_demo.py'

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

custom_hooks = [{{_base_.candidate_loss_hook}},
                dict(type='mmohem.OHEMVisHook', interval=100)]
