# ResNetV1d-50 with the tricks of resnet50_8xb32-tricks_in1k.py (same backbone arguments, V1d stem
# and shortcuts).
_base_ = ['../resnet/resnet50_8xb32-tricks_in1k.py']
model = dict(backbone=dict(type='mmresfamily.ResNetV1d'))
