# The OHEM twin of ssdlite_mobilenetv2-tiny_demo.py: the head's fixed 3:1
# hard negative mining is replaced by OHEM (loss-NMS + top-64 anchors per
# image); nothing else changes.
_base_ = './ssdlite_mobilenetv2-tiny_demo.py'

model = dict(
    bbox_head=dict(type='mmohem.OHEMSSDHead'),
    train_cfg=dict(sampler=dict(type='mmohem.OHEMSampler', num=64)))

# Draws what OHEM mines every 100 iterations (8 pictures per 800-iteration
# run) into <work_dir>/<timestamp>/vis_data/vis_image/.
custom_hooks = [{{_base_.candidate_loss_hook}},
                dict(type='mmohem.OHEMVisHook', interval=100)]
