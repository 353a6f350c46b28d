# The peer arm of the demo's detection comparison: mmdet's own OHEMSampler
# in place of the baseline's RandomSampler, with the same 64 RoIs per image
# and its default 0.25 positive fraction (no loss-based NMS).
_base_ = './faster-rcnn_r18-tiny_fpn_demo.py'

model = dict(
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(
                _delete_=True,
                type='OHEMSampler',
                num=64,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True))))
