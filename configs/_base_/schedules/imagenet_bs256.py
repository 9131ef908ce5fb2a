# SGD for a total batch of 256 (mmpretrain's imagenet_bs256): lr 0.1, momentum 0.9, weight decay
# 1e-4, 100 epochs, lr x0.1 at epochs 30/60/90.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
max_epochs = 100
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# Trick switches (see configs/pretrain/_base_/imagenet_cls.py for all of them):
# - linear LR scaling: `auto_scale_lr.enable=True` multiplies lr by (GPUs x batch_size) / 256
#   (mmengine's Runner.scale_lr, before the schedulers are built).
auto_scale_lr = dict(base_batch_size=256, enable=False)
# - warmup + cosine: `param_scheduler = _base_.warmup_cosine` in a leaf. Linear warmup from
#   lr/1000 over 5 epochs, then cosine to 0, both stepped every iteration. Written for
#   max_epochs=100: a leaf that changes max_epochs redefines it.
warmup_epochs = 5
warmup_cosine = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0., by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
