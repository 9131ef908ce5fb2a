# Real Fashion-MNIST (Debian package dataset-fashion-mnist) for mmpretrain, at 32x32.
custom_imports = dict(imports=['mmresfamily', 'mmresfamily.datasets.mmpretrain_fashion_mnist'],
                      allow_failed_imports=False)
image_size = 32
data_preprocessor = dict(num_classes=10, mean=[72.9] * 3, std=[90.0] * 3, to_rgb=False)
train_pipeline = [
    dict(type='Resize', scale=(image_size, image_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(image_size, image_size)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='FashionMNISTLocal', split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FashionMNISTLocal', split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
