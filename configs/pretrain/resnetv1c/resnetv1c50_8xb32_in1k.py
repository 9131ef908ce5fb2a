# ResNetV1c-50 (3x3 deep stem) on ImageNet-1k.
_base_ = ['../../_base_/backbones/resnet50_v1c.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone),
             head=dict(in_channels=_base_.channels_c4))
