# A hard-example peer of the demo's detection comparison: PISA (Cao et al.,
# CVPR 2020) as mmdet configures it (configs/pisa/
# faster-rcnn_r50_fpn_pisa_1x_coco.py): PISARoIHead, ScoreHLRSampler with
# mmdet's k and bias, ISR and CARL, smooth-L1 box loss. Scaled to the
# demo's 64 RoIs per image as the baseline's RandomSampler was; the
# proposal counts stay the baseline's. Not tuned on the demo.
_base_ = './faster-rcnn_r18-tiny_fpn_demo.py'

model = dict(
    roi_head=dict(
        type='PISARoIHead',
        bbox_head=dict(
            loss_bbox=dict(
                _delete_=True, type='SmoothL1Loss', beta=1.0,
                loss_weight=1.0))),
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(
                _delete_=True,
                type='ScoreHLRSampler',
                num=64,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True,
                k=0.5,
                bias=0.),
            isr=dict(k=2, bias=0),
            carl=dict(k=1, bias=0.2))))
