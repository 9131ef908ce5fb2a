# Res2Net-50 26w x 4s (v1b) on ImageNet-1k.
_base_ = ['../../_base_/backbones/res2net50_v1b.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone),
             head=dict(in_channels=_base_.channels_c4))
