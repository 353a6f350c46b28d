# A hard-example peer of the demo's RetinaNet comparison: the gradient
# harmonizing classification loss GHM-C (Li, Liu & Wang, AAAI 2019) in place
# of the focal loss, with mmdet's options (configs/ghm/
# retinanet_r50_fpn_ghm-1x_coco.py: 30 bins, momentum 0.75). mmdet's config
# also swaps the box loss for GHM-R and clips gradients at norm 35; this arm
# keeps the baseline's L1 box loss and optimizer, so that it changes the
# classification strategy only. Not tuned on the demo.
_base_ = './retinanet_r18-tiny_fpn_demo.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='GHMC',
            bins=30,
            momentum=0.75,
            use_sigmoid=True,
            loss_weight=1.0)))
