# Mask R-CNN + FPN with an mmresfamily ResNet-18 from scratch on the quickstart data: boxes and
# instance masks on a 2-core CPU within minutes (README's first command).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/quickstart_detection.py',
    '../_base_/schedules/quickstart_det.py',
    '../_base_/models/quickstart_r18.py',
]

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=_base_.quickstart_backbone,
    neck=dict(in_channels=_base_.quickstart_channels, out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128,
                  anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0],
                                        strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=10),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(num_convs=2, in_channels=128, conv_out_channels=128, num_classes=10)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128), mask_size=28)),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=20)))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
