# Cascade R-CNN + FPN with an mmresfamily ResNet-18 on the quickstart data: tools/coco_transfer.py's
# cascade template for small images (small anchors and fewer proposals, like the quickstart Faster
# R-CNN; the three box heads keep mmdet's widths, as they are a list a config cannot patch). The
# tool replaces the backbone, neck in_channels, num_classes of every head, data and schedule.
_base_ = [
    'mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
    '../_base_/datasets/quickstart_detection.py',
    '../_base_/schedules/quickstart_det.py',
    '../_base_/models/quickstart_r18.py',
]

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=_base_.quickstart_backbone,
    neck=dict(in_channels=_base_.quickstart_channels),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[4, 8, 16, 32, 64])),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=300)),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=20)))
