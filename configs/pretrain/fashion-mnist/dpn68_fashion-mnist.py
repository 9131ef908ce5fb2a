_base_ = ['_base_/fmnist-32px_0.25ep.py']
model = dict(
    backbone=dict(_delete_=True, type='mmresfamily.DPN', arch='68', **_base_.cls_backbone),
    head=dict(in_channels=832))
# at the shared lr 0.1 DPN-68 diverged within 50 iterations (loss 251, then NaN)
optim_wrapper = dict(optimizer=dict(lr=0.04), clip_grad=dict(max_norm=5.0))
