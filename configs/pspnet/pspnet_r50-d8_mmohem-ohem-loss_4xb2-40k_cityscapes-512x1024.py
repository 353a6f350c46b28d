_base_ = 'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmohem'], allow_failed_imports=False)

# OHEM as the loss of both heads: mean cross-entropy over the kept pixels
# (true-class probability below 0.7, at least 100000 per image).
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='mmohem.OhemCrossEntropy',
            thresh=0.7,
            min_kept=100000,
            loss_weight=1.0)),
    auxiliary_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='mmohem.OhemCrossEntropy',
            thresh=0.7,
            min_kept=100000,
            loss_weight=0.4)))
