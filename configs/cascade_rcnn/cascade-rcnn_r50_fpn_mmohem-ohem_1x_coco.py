# Cascade R-CNN R50-FPN 1x with mmohem's OHEM at every stage: the RoI samplers
# are the only change. mmengine configs replace lists whole, so the three
# stages are restated with the upstream assigners (IoU 0.5 / 0.6 / 0.7);
# tests/test_det/test_configs.py checks that nothing else differs.
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(rcnn=[
        dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=iou,
                neg_iou_thr=iou,
                min_pos_iou=iou,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(type='mmohem.OHEMSampler', num=512, nms_thr=0.7),
            pos_weight=-1,
            debug=False) for iou in (0.5, 0.6, 0.7)
    ]))
