# The OHEM twin of ssdlite_mobilenetv2-tiny_demo.py with a floor of
# positives: of the 64 anchors kept per image, up to 16 places are reserved
# for the positives of highest loss (pos_fraction=0.25), the rest go to
# the hardest negatives. This is the remedy for heads whose hard negatives
# outrank every positive (ohem/no_pos_images near 1: no box regression is
# trained), as the TF Object Detection API bounds negatives per positive.
_base_ = './ssdlite_mobilenetv2-tiny_ohem_demo.py'

model = dict(train_cfg=dict(sampler=dict(pos_fraction=0.25)))
