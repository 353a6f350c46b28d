# The peer arm of the demo's segmentation comparison: mmseg's own
# OHEMPixelSampler with the thresh / min_kept of the mmohem twin
# (pspnet_r18-tiny-d8_ohem_demo.py), so both keep the same pixels.
_base_ = './pspnet_r18-tiny-d8_demo.py'

model = dict(
    decode_head=dict(
        sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=3125)))
