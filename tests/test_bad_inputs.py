"""Every family refuses bad arguments at build time and bad inputs at forward, with a message
naming the argument (or layer) and what is allowed, in exception types compatible with what
mmdet/mmpretrain raise; GroupNorm builds for every family (documented fallback)."""
import re
import warnings

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn as nn

from mmresfamily import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvalidInputError,
    UnknownChoiceError,
)
from mmresfamily.models.layers import FallbackGroupNorm, SplitAttentionConv2d
from mmresfamily.models.layers.norm import dividing_groups
from mmresfamily.registry import MODELS

FAMILIES = {
    'ResNet': dict(type='ResNet', depth=18),
    'ResNetV1c': dict(type='ResNetV1c', depth=18),
    'ResNetV1d': dict(type='ResNetV1d', depth=50),
    'ResNeXt': dict(type='ResNeXt', depth=50),
    'ResNeSt': dict(type='ResNeSt', depth=14),
    'Res2Net': dict(type='Res2Net', depth=50),
    'PreResNet': dict(type='PreResNet', depth=18),
    'DenseNet': dict(type='DenseNet', arch=121),
    'DPN': dict(type='DPN', arch='68'),
    'HarDNet': dict(type='HarDNet', arch='68'),
    'HarDNet-DS': dict(type='HarDNet', arch='39DS'),
    'RedNet': dict(type='RedNet', depth=26),
    'DCDCResNet': dict(type='DCDCResNet', depth=50),
}
RESNET_STYLE = ['ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNeXt', 'ResNeSt', 'Res2Net', 'PreResNet',
                'RedNet', 'DCDCResNet']
DYNAMIC = ['RedNet', 'DCDCResNet']  # their operator replaces the conv DCN would deform
TAKES_DCN = [f for f in FAMILIES if f not in DYNAMIC]
THREE_BLOCK_LAST_STAGE = ['ResNetV1d', 'ResNeXt', 'Res2Net', 'DCDCResNet']  # for multi_grid
DPN68 = dict(k_r=128, groups=32, k_sec=(3, 4, 12, 3), inc_sec=(16, 32, 32, 64), small=True,
             num_init_features=10, b=False)
LAST_DCN = dict(stage_with_dcn=(False, False, False, True))
GN = dict(type='GN', num_groups=32, requires_grad=True)


def build(family, **kwargs):
    cfg = FAMILIES[family]
    return MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type'], **kwargs))


def case(families, kwargs, error, match):
    return [pytest.param(f, kwargs, error, match, id=f'{f}-{_describe(kwargs)}')
            for f in families]


def _describe(kwargs):
    return ','.join(f'{k}={v!r}' for k, v in kwargs.items() if k != 'stage_with_dcn')[:60]


# (families, bad arguments, exception type, message)
BAD_ARGUMENTS = [
    # layer configs
    *case(FAMILIES, dict(norm_cfg=dict(type='Foo')), UnknownChoiceError,
          r"norm_cfg type 'Foo' is not a registered norm layer \(registered: 'BN'.*'GN'"),
    *case(FAMILIES, dict(norm_cfg='BN'), ArgumentTypeError,
          r'norm_cfg must be a dict with a "type" key'),
    *case(FAMILIES, dict(norm_cfg=dict(num_groups=32)), InvalidArgumentError,
          r'norm_cfg needs a "type" key'),
    *case(FAMILIES, dict(norm_cfg=dict(type='GN')), InvalidArgumentError,
          r"norm_cfg of type 'GN' needs num_groups"),
    *case(FAMILIES, dict(norm_cfg=dict(type='GN', num_groups=0)), InvalidArgumentError,
          r'norm_cfg num_groups must be a positive int; got 0'),
    *case(FAMILIES, dict(norm_cfg=dict(type='LN')), InvalidArgumentError,
          r"norm_cfg type 'LN' \(LayerNorm\) does not apply to the \(N, C, H, W\) features"),
    *case(FAMILIES, dict(norm_cfg=dict(type='BN', momentm=0.1)), ArgumentTypeError,
          r"norm_cfg .*'momentm'.* cannot build a norm over \d+ channels"),
    *case(FAMILIES, dict(conv_cfg=dict(type='Foo')), UnknownChoiceError,
          r"conv_cfg type 'Foo' is not a registered conv layer \(registered: .*'Conv2d'"),
    *case(FAMILIES, dict(conv_cfg='Conv2d'), ArgumentTypeError, r'conv_cfg must be a dict'),
    *case(FAMILIES, dict(conv_cfg=dict(type='deconv')), InvalidArgumentError,
          r"conv_cfg type 'deconv' \(ConvTranspose2d\) does not apply"),
    *case(TAKES_DCN, dict(dcn=dict(type='Foo'), **LAST_DCN), UnknownChoiceError,
          r"dcn type 'Foo' is not a registered dcn layer \(registered: .*'DCNv2'"),
    *case(TAKES_DCN, dict(dcn='DCNv2'), ArgumentTypeError, r'dcn must be a dict'),
    *case(TAKES_DCN, dict(dcn=dict(type='DCNv2', deform_groups=0), **LAST_DCN),
          InvalidArgumentError, r'dcn deform_groups must be a positive int; got 0'),
    *case(['ResNet'], dict(depth=50, dcn=dict(type='DCNv2', deform_groups=3), **LAST_DCN),
          InvalidArgumentError, r'dcn deform_groups=3 must divide the 512 input channels'),
    *case(DYNAMIC, dict(dcn=dict(type='DCNv2')), InvalidArgumentError, r'dcn is not supported'),
    # common arguments
    *case(FAMILIES, dict(in_channels=0), InvalidArgumentError,
          r'in_channels must be a positive int; got 0'),
    *case(FAMILIES, dict(num_stages='4'), UnknownChoiceError,
          r"num_stages must be one of 1, 2, 3, 4; got '4'"),
    *case(FAMILIES, dict(num_stages=4.0), UnknownChoiceError, r'num_stages .*; got 4.0'),
    *case(FAMILIES, dict(frozen_stages='1'), UnknownChoiceError,
          r"frozen_stages must be one of -1, 0, 1, 2, 3, 4; got '1'"),
    *case(FAMILIES, dict(out_indices='0'), ArgumentTypeError, r'out_indices must be None'),
    *case(FAMILIES, dict(norm_eval='False'), ArgumentTypeError,
          r"norm_eval must be True or False; got 'False'"),
    *case(FAMILIES, dict(with_cp='yes'), ArgumentTypeError, r'with_cp must be True or False'),
    # per-stage values that used to fail only at forward
    *case(RESNET_STYLE, dict(strides=(1, 0, 2, 2)), InvalidArgumentError,
          r'strides entries must be positive ints; got \(1, 0, 2, 2\)'),
    *case(RESNET_STYLE, dict(strides=(1, 1.5, 2, 2)), ArgumentTypeError,
          r'strides entries must be positive ints; got \(1, 1.5, 2, 2\)'),
    *case(RESNET_STYLE, dict(dilations=(1, 1, -1, 1)), InvalidArgumentError,
          r'dilations entries must be positive ints'),
    *case(RESNET_STYLE, dict(dilations=(1, '2', 1, 1)), ArgumentTypeError,
          r'dilations entries must be positive ints'),
    *case(THREE_BLOCK_LAST_STAGE, dict(multi_grid=(1, 0, 4)), InvalidArgumentError,
          r'multi_grid .*entries must be positive ints; got \(1, 0, 4\)'),
    *case(['DPN'], dict(strides=(1, 0, 2, 2)), UnknownChoiceError,
          r'strides entries must be one of 1, 2; got 0'),
    *case(['DPN'], dict(dilations=(1, 1, 0, 1)), InvalidArgumentError,
          r'dilations entries must be positive ints'),
    *case(['ResNet', 'Res2Net', 'PreResNet', 'DCDCResNet'], dict(deep_stem='False'),
          ArgumentTypeError, r'deep_stem must be True'),
    # widths and counts
    *case(RESNET_STYLE, dict(depth='50'), UnknownChoiceError,
          r"depth must be one of .*50.*; got '50'"),
    *case(RESNET_STYLE, dict(depth=50.0), UnknownChoiceError, r'depth must be one of .*; got 50.0'),
    *case(RESNET_STYLE, dict(base_channels=0), InvalidArgumentError,
          r'base_channels must be a positive int; got 0'),
    *case(RESNET_STYLE, dict(base_channels='64'), ArgumentTypeError,
          r"base_channels must be a positive int; got '64'"),
    *case(RESNET_STYLE, dict(stem_channels=-8), InvalidArgumentError, r'stem_channels must be'),
    *case(['ResNetV1c', 'RedNet'], dict(stem_channels=1), InvalidArgumentError,
          r'stem_channels must be >= 2 \(an int\); got 1'),
    *case(['ResNeXt', 'ResNeSt', 'Res2Net'], dict(groups=0), InvalidArgumentError,
          r'groups must be a positive int; got 0'),
    *case(['ResNeXt', 'ResNeSt', 'Res2Net'], dict(base_width=-4), InvalidArgumentError,
          r'base_width must be a positive int; got -4'),
    *case(['ResNeSt'], dict(radix=0), InvalidArgumentError, r'radix must be a positive int'),
    *case(['ResNeSt'], dict(reduction_factor=0), InvalidArgumentError,
          r'reduction_factor must be a positive int; got 0'),
    *case(['ResNeSt'], dict(groups=3), InvalidArgumentError,
          r"groups=3 must divide the split attention's 32 inner channels"),
    *case(['ResNeSt'], dict(avg_down_stride='no'), ArgumentTypeError, r'avg_down_stride must be'),
    *case(['Res2Net'], dict(scales='4'), ArgumentTypeError,
          r"scales must be >= 2 \(an int\); got '4'"),
    *case(['DenseNet'], dict(arch=dict(growth_rate=0, depths=(1, 1, 1, 1))),
          InvalidArgumentError, r'arch growth_rate must be a positive int; got 0'),
    *case(['DenseNet'], dict(arch=dict(growth_rate=8, depths=(1, 0, 1, 1))),
          InvalidArgumentError, r'arch depths entries must be positive ints'),
    *case(['DenseNet'], dict(compression='0.5'), ArgumentTypeError,
          r"compression must be in \(0, 1\]; got '0.5'"),
    *case(['DenseNet'], dict(compression=0.001), InvalidArgumentError,
          r'compression=0.001 keeps no channel of the 256 entering stage2'),
    *case(['DenseNet'], dict(arch='12x'), UnknownChoiceError, r'arch must be one of 121'),
    *case(['DPN'], dict(arch=dict(DPN68, k_r=0)), InvalidArgumentError,
          r'arch k_r must be a positive int; got 0'),
    *case(['DPN'], dict(arch=dict(DPN68, groups=3)), InvalidArgumentError,
          r'arch groups=3 must divide k_r=128'),
    *case(['HarDNet'], dict(drop_rate='0.1'), ArgumentTypeError,
          r"drop_rate must be None or in \[0, 1\); got '0.1'"),
    *case(['RedNet'], dict(kernel_size=4), InvalidArgumentError,
          r'kernel_size must be a positive odd int; got 4'),
    *case(DYNAMIC, dict(group_channels='16'), ArgumentTypeError,
          r"group_channels must be a positive int; got '16'"),
    *case(DYNAMIC, dict(reduction_ratio=0), InvalidArgumentError,
          r'reduction_ratio must be a positive int; got 0'),
    *case(['DCDCResNet'], dict(global_group_channels=0), InvalidArgumentError,
          r'global_group_channels must be a positive int; got 0'),
]


@pytest.mark.parametrize('family,kwargs,error,match', BAD_ARGUMENTS)
def test_bad_argument_fails_at_build_naming_it(family, kwargs, error, match):
    with torch.device('meta'), pytest.raises(error, match=match) as info:
        build(family, **kwargs)
    assert isinstance(info.value, ValueError)


# what mmdet 3.3 / mmpretrain 1.2 raise for the same mistake (their backbones and mmcv's
# layer builders): KeyError for unknown depths and layer types, TypeError for non-dict layer
# configs, AssertionError for the rest
TOOLBOX_ERRORS = [
    ('ResNet', dict(depth=42), KeyError),
    ('ResNeXt', dict(depth=34), KeyError),
    ('ResNeSt', dict(depth=34), KeyError),
    ('ResNet', dict(style='tf'), AssertionError),
    ('ResNet', dict(num_stages=5), AssertionError),
    ('ResNet', dict(strides=(1, 2, 2)), AssertionError),
    ('ResNet', dict(out_indices=(0, 4)), AssertionError),
    ('ResNet', dict(depth=50, dcn=dict(type='DCNv2'), stage_with_dcn=(True, )), AssertionError),
    ('ResNet', dict(dcn=dict(type='DCNv2'), stage_with_dcn=(False, True, True, True)),
     AssertionError),
    ('ResNet', dict(depth=50, dcn=dict(type='DCNv2'), conv_cfg=dict(type='Conv2d'), **LAST_DCN),
     AssertionError),
    ('Res2Net', dict(scales=1), AssertionError),
    ('DenseNet', dict(arch=122), AssertionError),
    ('DenseNet', dict(arch=dict(growth_rate=32)), AssertionError),
    ('ResNet', dict(norm_cfg=dict(type='Foo')), KeyError),
    ('ResNet', dict(conv_cfg=dict(type='Foo')), KeyError),
    ('ResNet', dict(norm_cfg='BN'), TypeError),
    ('ResNet', dict(conv_cfg='Conv2d'), TypeError),
    ('ResNet', dict(norm_cfg=dict(type='GN')), AssertionError),
    ('ResNet', dict(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
     AssertionError),
    ('ResNet', dict(pretrained=1), TypeError),
]


@pytest.mark.parametrize('family,kwargs,toolbox_error', TOOLBOX_ERRORS,
                         ids=[f'{f}-{_describe(k)}' for f, k, _ in TOOLBOX_ERRORS])
def test_error_types_are_compatible_with_the_toolboxes(family, kwargs, toolbox_error):
    with torch.device('meta'), pytest.raises(toolbox_error) as info:
        build(family, **kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.args[0]  # plain message: KeyError would quote it


@pytest.mark.parametrize('channels,num_groups,expected', [(104, 32, 26), (304, 32, 19),
                                                          (10, 32, 10), (64, 32, 32)])
def test_fallback_group_count_is_the_largest_divisor(channels, num_groups, expected):
    assert dividing_groups(channels, num_groups) == expected


@pytest.mark.parametrize('family', FAMILIES)
def test_group_norm_32_builds_every_family(family):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = build(family, norm_cfg=GN)
    fallbacks = {name: m for name, m in model.named_modules() if isinstance(m, FallbackGroupNorm)}
    messages = [str(w.message) for w in caught if 'num_groups=32' in str(w.message)]
    for name, m in model.named_modules():
        if isinstance(m, nn.GroupNorm) and not isinstance(m, FallbackGroupNorm):
            assert m.num_groups in (32, 1), name  # 1: split attention's pooled norm
    if fallbacks:
        assert len(messages) == 1, messages
        assert f'channels of {len(fallbacks)} norms' in messages[0]
        for name, m in list(fallbacks.items())[:8]:
            assert m.num_groups == dividing_groups(m.num_channels, 32) and m.num_channels % 32
            assert f'{name} ({m.num_channels} channels: {m.num_groups} groups)' in messages[0]
    else:
        assert not messages
    outs = model.train()(torch.randn(1, 3, 64, 64))  # batch 1 in training: GN only
    assert [o.shape[1] for o in outs] == list(model.out_channels)


def test_group_norm_fallback_only_where_mmcv_cannot_build():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = build('ResNet', depth=50, norm_cfg=GN)
    assert not any(isinstance(m, FallbackGroupNorm) for m in model.modules())
    assert not [w for w in caught if 'num_groups' in str(w.message)]


def test_split_attention_group_norm_depends_on_its_input_at_batch_1():
    model = build('ResNeSt', norm_cfg=GN).train()
    attention = model.layer1[0].conv2
    assert isinstance(attention, SplitAttentionConv2d)
    logits = []
    attention.fc2.register_forward_hook(lambda m, i, out: logits.append(out.detach()))
    for seed in (0, 1):
        model(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed)))
    assert not torch.allclose(logits[0], logits[1])
    # one group over the pooled vector: mmcv's 32 groups of one value would output bias only
    assert attention.gn1.num_groups == 1 and attention.gn1.num_channels == 32
    assert attention.gn0.num_groups == 32


def test_split_attention_refuses_instance_norm_on_pooled_features():
    with pytest.raises(InvalidArgumentError, match=r'instance norm over globally pooled'):
        SplitAttentionConv2d(64, 64, norm_cfg=dict(type='IN'))


def test_split_attention_batch_norm_needs_two_images_in_training():
    model = build('ResNeSt').train()
    with pytest.raises(InvalidInputError, match=r'ResNeSt in training with BatchNorm needs batch '
                                                r'size >= 2: its split-attention norm'):
        model(torch.randn(1, 3, 64, 64))
    model.check_input = lambda x: None  # what the check prevents: torch's error, deep inside
    with pytest.raises(ValueError, match='Expected more than 1 value per channel'):
        model(torch.randn(1, 3, 64, 64))
    del model.check_input
    model(torch.randn(2, 3, 64, 64))
    build('ResNeSt', norm_eval=True).train()(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize('family', FAMILIES)
def test_non_tensor_input(family):
    model = build(family).eval()
    with pytest.raises(InvalidInputError, match=r'expects a torch.Tensor of shape \(N, 3, H, W\) '
                                                r'\(torch.from_numpy.*got numpy.ndarray'):
        model(np.zeros((1, 3, 64, 64), np.float32))


@pytest.mark.parametrize('family', FAMILIES)
def test_empty_batch(family):
    with pytest.raises(InvalidInputError, match=r'empty batch \(0, 3, 64, 64\)'):
        build(family).eval()(torch.randn(0, 3, 64, 64))


@pytest.mark.parametrize('family', FAMILIES)
def test_feature_sizes_match_the_outputs(family):
    """The size rule behind min_input_size, at odd sizes where floor and ceil differ."""
    model = build(family).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 70, 45))
    assert [tuple(o.shape[2:]) for o in outs] == list(
        zip(model.feature_sizes(70), model.feature_sizes(45)))


def _without_check(model):
    model.check_input = lambda x: None
    return model


@pytest.mark.parametrize('family,kwargs', [(f, {}) for f in FAMILIES] + [
    ('DenseNet', dict(out_indices=(1, ))), ('HarDNet', dict(out_indices=(0, 2)))])
def test_min_input_size_is_the_real_minimum(family, kwargs):
    """The rule derived from the layers: runs at min_input_size, and below it the stages
    themselves fail (checked by running them without the check)."""
    model = build(family, **kwargs).eval()
    size = model.min_input_size
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
        if size > 1:
            for shape in ((size - 1, size), (size, size - 1)):
                with pytest.raises(InvalidInputError, match=rf'{model.__class__.__name__} needs H '
                                   rf'and W >= {size} .*got {shape[0]}x{shape[1]}'):
                    model(torch.randn(1, 3, *shape))
                with pytest.raises(RuntimeError):
                    _without_check(model)(torch.randn(1, 3, *shape))
                del model.check_input


def test_dense_families_need_more_than_eight_pixels():
    with pytest.raises(InvalidInputError, match=r'DenseNet needs H and W >= \d+ .*got 8x8'):
        build('DenseNet').eval()(torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize('family', [f for f in FAMILIES if f != 'ResNeSt'])
def test_single_image_training_needs_more_than_one_pixel_at_the_last_stage(family):
    model = build(family).train()
    size = next(s for s in range(model.min_input_size, 256)
                if model.feature_sizes(s)[-1] == 1)
    pattern = rf'batch size 1 needs H or W >= (\d+): at {size}x{size} the BatchNorm layers'
    with pytest.raises(InvalidInputError, match=pattern) as info:
        model(torch.randn(1, 3, size, size))
    needed = int(re.search(pattern, str(info.value)).group(1))
    with pytest.raises(ValueError, match='Expected more than 1 value per channel'):
        _without_check(model)(torch.randn(1, 3, needed - 1, needed - 1))
    del model.check_input
    model(torch.randn(1, 3, needed, needed))
    model(torch.randn(1, 3, size, needed))  # a 1x2 map is enough
    model(torch.randn(2, 3, size, size))


def test_checks_skip_under_fx_and_jit_tracing():
    model = build('ResNet').eval()

    class StagesAsLeaves(torch.fx.Tracer):
        def is_leaf_module(self, module, name):
            return module is not model

    graph = StagesAsLeaves().trace(model)  # the check would branch on a Proxy's shape
    assert any(node.target == 'layer4' for node in graph.nodes)
    with warnings.catch_warnings():
        warnings.simplefilter('error', torch.jit.TracerWarning)
        traced = torch.jit.trace(model, torch.randn(1, 3, 64, 64), check_trace=False)
    assert traced(torch.randn(2, 3, 96, 80))[0].shape == (2, 64, 24, 20)


def test_compiled_model_keeps_the_check():
    model = build('DenseNet').eval()
    with torch.no_grad():
        torch.compile(model, backend='eager', fullgraph=True)(torch.randn(1, 3, 64, 64))
        with pytest.raises(InvalidInputError, match=r'needs H and W >= '):
            torch.compile(model, backend='eager')(torch.randn(1, 3, 16, 16))


def test_every_family_of_the_model_table_is_covered():
    """A family added to the table (mmresfamily/zoo.py) must join these cases."""
    from mmresfamily import zoo
    assert {cfg['type'] for cfg in FAMILIES.values()} == set(zoo.families())
