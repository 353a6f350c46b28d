# Schedule and logging shared by every demo config: 800 iterations of AdamW
# from the pretrained backbones (lr 1e-3 unless an experiment's baseline
# sets the one it was chosen with), a 50-iteration warm-up then a cosine
# decay; one evaluation at the end.
max_iters = 800

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        T_max=max_iters,
        eta_min=1e-5),
]

# A log line every 10 iterations, each with the loss over all candidates of
# the batch measured just before that step (mmohem.CandidateLossHook), for
# every arm.
log_interval = 10
demo_log_processor = dict(
    type='LogProcessor',
    window_size=log_interval,
    by_epoch=False,
    custom_cfg=[
        dict(data_src='candidate_loss', method_name='mean', window_size=1)
    ])
candidate_loss_hook = dict(
    type='mmohem.CandidateLossHook', interval=log_interval)
