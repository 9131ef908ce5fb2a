# ResNet-50 with Highway-gated shortcuts on ImageNet-1k.
_base_ = ['../../_base_/backbones/resnet50_highway.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone),
             head=dict(in_channels=_base_.channels_c4))
