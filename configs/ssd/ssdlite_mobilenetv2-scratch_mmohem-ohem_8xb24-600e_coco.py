# ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py with mmohem's OHEM in place
# of SSD's fixed 3:1 hard negative mining: the head type and
# train_cfg.sampler are the only changes. After a loss-based NMS at IoU 0.7
# over the prior anchors, the max(64, 4 x positives) anchors of highest loss
# (cls + box) of each image are kept; positives and negatives compete on
# loss. train_cfg.neg_pos_ratio is unused by OHEMSSDHead.
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(type='mmohem.OHEMSSDHead'),
    train_cfg=dict(
        sampler=dict(
            _delete_=True,
            type='mmohem.OHEMSampler',
            num=64,
            num_per_pos=4,
            nms_thr=0.7)))
