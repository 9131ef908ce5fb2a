# ImageNet-1k pretraining of an mmresfamily backbone with mmpretrain's ImageClassifier
# (GlobalAveragePooling + LinearClsHead, 1000 classes), SGD, 8 GPUs x 32 images.
# A family leaf lists its backbone base (configs/_base_/backbones/NAME.py) and this file, and sets
#   model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone),
#                head=dict(in_channels=_base_.channels_c4))
# (cls_backbone for DenseNet, HarDNet and DPN, which have no zero_init_residual option;
# cls_preact_backbone for PreResNet).
#
# Trick switches ("Bag of Tricks", He et al. 2019), all off here; *-tricks_in1k.py turns them on.
#   linear LR scaling    auto_scale_lr.enable=True                  (lr x total batch / 256)
#   warmup + cosine      param_scheduler = _base_.warmup_cosine      (leaf line)
#   label smoothing      model.head.loss.label_smooth_val=0.1        (a float; 0.0 = plain CE)
#   mixup / cutmix       model = dict(train_cfg=_base_.mixup_cutmix) (leaf line)
#   zero-gamma           model.backbone.zero_init_residual=True      (residual families only)
#   no bias/norm decay   optim_wrapper.paramwise_cfg.norm_decay_mult=0. and .bias_decay_mult=0.
#   mixed precision      tools/train.py --amp (sets optim_wrapper.type='AmpOptimWrapper'; CUDA only)
#   distillation         model.type='mmresfamily.KDImageClassifier' + teacher, teacher_ckpt,
#                        kd_loss and custom_imports 'mmresfamily.pretrain' (see *-kd_in1k.py)
# The one-value switches also work from the command line: --cfg-options KEY=VALUE.
_base_ = [
    '../../_base_/datasets/imagenet_bs32.py',
    '../../_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(),  # from the family leaf
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=None,  # the backbone's last out_channels, from the family leaf
        # label_smooth_val=0.0 is exactly cross-entropy; unlike CrossEntropyLoss it also takes
        # mixup/cutmix's soft labels, so each of the two tricks switches on alone
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.0, mode='original', loss_weight=1.0),
        topk=(1, 5)))

# What a classifier changes in a family's detection backbone (configs/_base_/backbones/NAME.py):
# last stage only, nothing frozen, BN statistics train, trained from scratch.
cls_backbone = dict(out_indices=(3, ), frozen_stages=-1, norm_eval=False, init_cfg=None)
# the same for families with residual blocks: zero-gamma off (those backbones default to on)
cls_res_backbone = dict(cls_backbone, zero_init_residual=False)
# pre-activation blocks leave their sum un-normalised: the head sees the last stage through its
# out-norm (+ ReLU), whatever the detection backbone hands out
cls_preact_backbone = dict(cls_res_backbone, out_norm=True)
# mixup (alpha 0.2, as in the paper) or cutmix (alpha 1.0), one of the two per batch; labels
# become soft scores (data_preprocessor), which the LabelSmoothLoss above accepts.
mixup_cutmix = dict(augments=[dict(type='Mixup', alpha=0.2), dict(type='CutMix', alpha=1.0)])
