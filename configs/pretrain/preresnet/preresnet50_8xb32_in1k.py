# Pre-activation ResNet-50 on ImageNet-1k (out_norm: the final norm + ReLU before pooling).
_base_ = ['../../_base_/backbones/preresnet50.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_preact_backbone),
             head=dict(in_channels=_base_.channels_c4))
