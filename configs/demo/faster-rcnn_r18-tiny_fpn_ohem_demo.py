# The OHEM twin of faster-rcnn_r18-tiny_fpn_demo.py: only the RoI sampler
# changes (64 RoIs per image kept, as the baseline samples 64).
_base_ = './faster-rcnn_r18-tiny_fpn_demo.py'

model = dict(
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(_delete_=True, type='mmohem.OHEMSampler', num=64))))

# Draws what OHEM mines every 100 iterations (8 pictures per 800-iteration
# run) into <work_dir>/<timestamp>/vis_data/vis_image/.
custom_hooks = [{{_base_.candidate_loss_hook}},
                dict(type='mmohem.OHEMVisHook', interval=100)]
