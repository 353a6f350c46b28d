# A third pixel peer of the demo's segmentation comparison: mmseg's own
# OhemCrossEntropy loss (ported from PIDNet, as its PIDNet configs use it,
# thres=0.7) in the decode head, through mmohem.MMSegOhemCrossEntropy (its
# forward takes no `weight`, which a decode head passes). Its min_kept
# counts the whole batch: 8 x 3125, the per-image floor of the mmohem twin
# (pspnet_r18-tiny-d8_ohem_demo.py). The auxiliary head keeps its
# cross-entropy, as in the other OHEM arms. Not tuned on the demo.
_base_ = './pspnet_r18-tiny-d8_demo.py'

model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='mmohem.MMSegOhemCrossEntropy',
            thres=0.7,
            min_kept=8 * 3125,
            loss_name='loss_ce')))
