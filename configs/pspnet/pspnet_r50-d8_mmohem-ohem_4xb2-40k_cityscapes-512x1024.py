_base_ = 'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

# OHEM as the decode head's pixel sampler: its 0/1 per-pixel weight goes to
# every loss of the decode head (here mmseg's CrossEntropyLoss). Same pixels
# as mmseg's OHEMPixelSampler(thresh=0.7, min_kept=100000), found faster.
model = dict(
    decode_head=dict(
        sampler=dict(
            type='mmohem.OhemCrossEntropy', thresh=0.7, min_kept=100000)))
