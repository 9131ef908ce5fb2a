# HarDNet-68 on ImageNet-1k (no residual blocks: no zero-gamma switch).
_base_ = ['../../_base_/backbones/hardnet68.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_backbone),
             head=dict(in_channels=_base_.channels_c4))
