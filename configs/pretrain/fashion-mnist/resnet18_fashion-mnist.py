_base_ = ['_base_/fmnist-32px_0.25ep.py']
model = dict(
    backbone=dict(_delete_=True, type='mmresfamily.ResNet', depth=18, **_base_.cls_backbone),
    head=dict(in_channels=512))
