# A hard-example peer of the demo's detection comparison: the sampler of
# Libra R-CNN (Pang et al., CVPR 2019) alone, as mmdet configures it
# (configs/libra_rcnn/libra-faster-rcnn_r50_fpn_1x_coco.py): IoU-balanced
# negatives and instance-balanced positives, without the balanced feature
# pyramid or the balanced L1 loss. Scaled to the demo's 64 RoIs per image
# as the baseline's RandomSampler was. Not tuned on the demo.
_base_ = './faster-rcnn_r18-tiny_fpn_demo.py'

model = dict(
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(
                _delete_=True,
                type='CombinedSampler',
                num=64,
                pos_fraction=0.25,
                add_gt_as_proposals=True,
                pos_sampler=dict(type='InstanceBalancedPosSampler'),
                neg_sampler=dict(
                    type='IoUBalancedNegSampler',
                    floor_thr=-1,
                    floor_fraction=0,
                    num_bins=3)))))
