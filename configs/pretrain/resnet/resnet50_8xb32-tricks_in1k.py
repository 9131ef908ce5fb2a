# ResNet-50 with every "Bag of Tricks" (He et al. 2019) switch of _base_/imagenet_cls.py on,
# except mixed precision (tools/train.py --amp, CUDA only) and distillation
# (resnet50_8xb32-tricks-kd_in1k.py).
_base_ = ['./resnet50_8xb32_in1k.py']
auto_scale_lr = dict(enable=True)  # lr 0.1 per 256 images, whatever GPUs x batch_size is
param_scheduler = _base_.warmup_cosine  # 5 warmup epochs, then cosine
model = dict(
    backbone=dict(zero_init_residual=True),  # zero-gamma in the last norm of each block
    head=dict(loss=dict(label_smooth_val=0.1)),  # label smoothing
    train_cfg=_base_.mixup_cutmix)  # mixup or cutmix per batch
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))  # no bias decay
