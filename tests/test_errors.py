"""Bad input gets a clear error naming the argument and the allowed values."""
import pytest
import torch

from mmresfamily.registry import MODELS


def build(**cfg):
    return MODELS.build(dict(type='mmresfamily.' + cfg.pop('type', 'ResNet'), **cfg))


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=42), r'depth must be one of 18, 34, 50, 101, 152; got 42'),
    (dict(type='ResNeSt', depth=34), r'depth must be one of 14, 26, 50, 101, 152, 200, 269'),
    (dict(depth=50, out_indices=(0, 4)), r'out_indices .* \[-4, 3\] .*got \(0, 4\)'),
    (dict(depth=50, num_stages=3, out_indices=(0, 3)), r'out_indices.*num_stages=3'),
    (dict(depth=50, frozen_stages=5), r'frozen_stages must be one of -1, 0, 1, 2, 3, 4; got 5'),
    (dict(depth=50, dcn=dict(type='DCNv2'), stage_with_dcn=(True, True)),
     r'stage_with_dcn must have one entry per stage \(num_stages=4\); got 2'),
    (dict(depth=18, dcn=dict(type='DCNv2'), stage_with_dcn=(False, True, True, True)),
     r'dcn is not supported by BasicBlock'),
    (dict(depth=34, plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25),
                                  position='after_conv3')]),
     r'plugins are not supported by BasicBlock'),
    (dict(depth=50, plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25),
                                  position='after_conv4')]),
     r"plugin position must be one of \('after_conv1', 'after_conv2', 'after_conv3'\)"),
    (dict(depth=50, strides=(1, 2, 2)), r'strides must have one entry per stage'),
    (dict(depth=50, dilations=(1, 1, 2, 4, 1)), r'dilations must have one entry per stage'),
    (dict(depth=50, style='tf'), r"style must be one of 'pytorch', 'caffe'; got 'tf'"),
    (dict(depth=50, num_stages=5), r'num_stages must be one of 1, 2, 3, 4; got 5'),
    (dict(depth=50, multi_grid=(1, 2)), r'multi_grid .* one entry per stage'),
    (dict(type='Res2Net', depth=50, scales=1), r'scales must be >= 2'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


@pytest.mark.parametrize('type_', ['ResNet', 'ResNeSt', 'Res2Net', 'PreResNet'])
def test_wrong_input_channels(type_):
    model = build(type=type_, depth=50)
    with pytest.raises(ValueError, match=r'expects input of shape \(N, 3, H, W\) '
                                         r'\(in_channels=3\); got \(1, 1, 32, 32\)'):
        model(torch.randn(1, 1, 32, 32))


def test_unknown_type_names_the_scope():
    with pytest.raises(KeyError, match='ResNot'):
        MODELS.build(dict(type='mmresfamily.ResNot', depth=50))
