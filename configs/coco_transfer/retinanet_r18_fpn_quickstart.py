# RetinaNet + FPN with an mmresfamily ResNet-18 on the quickstart data: tools/coco_transfer.py's
# one-stage template for small images (narrow neck/head and small anchors, like the quickstart
# Faster R-CNN). The tool replaces the backbone, neck in_channels, num_classes, data and schedule.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/quickstart_detection.py',
    '../_base_/schedules/quickstart_det.py',
    '../_base_/models/quickstart_r18.py',
]

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=_base_.quickstart_backbone,
    # all four backbone levels (strides 4..64): quickstart objects are only 20-64 px
    neck=dict(in_channels=_base_.quickstart_channels, out_channels=128, start_level=0),
    bbox_head=dict(num_classes=10, in_channels=128, feat_channels=128, stacked_convs=2,
                   anchor_generator=dict(octave_base_scale=4, strides=[4, 8, 16, 32, 64])),
    test_cfg=dict(nms_pre=300, max_per_img=20))
