# Faster R-CNN R50-C4 (caffe) 1x with mmohem's OHEM: the RoI sampler is the
# only change.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

model = dict(
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(
                _delete_=True, type='mmohem.OHEMSampler', num=512,
                nms_thr=0.7))))
