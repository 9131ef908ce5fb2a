# ResNet-50 (v1b) on ImageNet-1k through mmpretrain's ImageClassifier.
_base_ = ['../../_base_/backbones/resnet50.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone),
             head=dict(in_channels=_base_.channels_c4))
