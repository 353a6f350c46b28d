_base_ = 'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

# OHEM as the decode head's pixel sampler. ADE20K crops are 512x512 and
# reduce_zero_label ignores a varying share of each, so the floor is a share
# of the valid pixels (1/16, as the BiSeNet OhemCELoss) rather than a count.
model = dict(
    decode_head=dict(
        sampler=dict(
            type='mmohem.OhemCrossEntropy', thresh=0.7, min_kept_ratio=1 /
            16)))
