# DPN-92 on ImageNet-1k (BN eps 1e-3; the backbone has no zero_init_residual option).
_base_ = ['../../_base_/backbones/dpn92.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_backbone),
             head=dict(in_channels=_base_.channels_c4))
