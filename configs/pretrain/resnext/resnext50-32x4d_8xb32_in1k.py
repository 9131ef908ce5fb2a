# ResNeXt-50 32x4d on ImageNet-1k (the ResNeXt backbone base is 101 deep; same widths).
_base_ = ['../../_base_/backbones/resnext101_32x4d.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone, depth=50),
             head=dict(in_channels=_base_.channels_c4))
