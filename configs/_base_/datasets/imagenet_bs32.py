# ImageNet-1k for mmpretrain in the standard layout, 32 images per GPU (8 GPUs: 256 in total):
#   data/imagenet/{train,val}/...  +  data/imagenet/meta/{train,val}.txt ("relative/path label")
# mmpretrain's default pipeline: RandomResizedCrop 224 + flip; ResizeEdge 256 + CenterCrop 224.
# `--cfg-options data_root=DIR/` moves every dataset path (tools/train.py, tools/test.py).
data_root = 'data/imagenet/'
dataset_type = 'ImageNet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],  # RGB, 0-255
    std=[58.395, 57.12, 57.375],
    to_rgb=True)  # images load as BGR
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=5,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='meta/train.txt',
                 data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=32,
    num_workers=5,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='meta/val.txt',
                 data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
