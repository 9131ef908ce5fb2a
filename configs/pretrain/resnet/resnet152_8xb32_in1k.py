# ResNet-152 on ImageNet-1k (also the teacher of resnet50_8xb32-tricks-kd_in1k.py).
_base_ = ['../../_base_/backbones/resnet50.py', '../_base_/imagenet_cls.py']
model = dict(backbone=dict(_base_.backbone_det, **_base_.cls_res_backbone, depth=152),
             head=dict(in_channels=_base_.channels_c4))
