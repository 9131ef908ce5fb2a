_base_ = ['_base_/fmnist-32px_0.25ep.py']
model = dict(
    backbone=dict(_delete_=True, type='mmresfamily.Res2Net', depth=50, scales=4, base_width=26,
                  **_base_.cls_backbone),
    head=dict(in_channels=2048))
