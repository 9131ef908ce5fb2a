# Real Fashion-MNIST at 32x32 for a quarter epoch (235 x 64 = 15,040 of the 60,000 training
# images), evaluated on the 10,000 test images: a CPU-sized pretraining run for every family
# (tools/pretrain_fashion_mnist.py runs them all and writes the README table).
_base_ = ['../../../quickstart/cls_r18_fashion-mnist.py']
# what every leaf's backbone keeps of the ResNet-18 it replaces (`_delete_`: the families take
# different arguments): the last stage out, trained from scratch
cls_backbone = dict(out_indices=(3, ), init_cfg=None)
max_iters = 235
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
