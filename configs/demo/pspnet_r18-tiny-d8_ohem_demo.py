# The OHEM twin of pspnet_r18-tiny-d8_demo.py: only the decode head's pixel
# sampler changes. min_kept=3125 of the 128 * 128 pixels per image is the
# share of mmseg's Cityscapes OHEM configs (100000 of 512 * 1024).
_base_ = './pspnet_r18-tiny-d8_demo.py'

model = dict(
    decode_head=dict(
        sampler=dict(
            type='mmohem.OhemCrossEntropy', thresh=0.7, min_kept=3125)))

# Draws what OHEM mines every 100 iterations (8 pictures per 800-iteration
# run) into <work_dir>/<timestamp>/vis_data/vis_image/.
custom_hooks = [{{_base_.candidate_loss_hook}},
                dict(type='mmohem.OHEMVisHook', interval=100)]
