"""mmdet-style options behave: frozen_stages, norm_eval, with_cp, DCN, plugins, init, outputs."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmresfamily.registry import MODELS
from mmresfamily.testing import (
    assert_dcn_stages,
    assert_frozen_stages,
    assert_norm_eval,
    assert_with_cp_equivalent,
)

FAMILIES = [
    dict(type='mmresfamily.ResNet', depth=18),
    dict(type='mmresfamily.ResNet', depth=50),
    dict(type='mmresfamily.ResNetV1c', depth=50),
    dict(type='mmresfamily.ResNetV1d', depth=50),
    dict(type='mmresfamily.ResNeXt', depth=50),
    dict(type='mmresfamily.ResNeSt', depth=14),
    dict(type='mmresfamily.Res2Net', depth=50),
    dict(type='mmresfamily.PreResNet', depth=18),
    dict(type='mmresfamily.PreResNet', depth=50),
]
IDS = [f'{c["type"].split(".")[1]}-{c["depth"]}' for c in FAMILIES]


def build(cfg, **kwargs):
    return MODELS.build(dict(cfg, **kwargs))


# the dynamic-kernel families too: their blocks are these families' with another 3x3
DYNAMIC = [dict(type='mmresfamily.RedNet', depth=26), dict(type='mmresfamily.DCDCResNet', depth=50)]


@pytest.mark.parametrize('cfg', FAMILIES + DYNAMIC,
                         ids=IDS + ['RedNet-26', 'DCDCResNet-50'])
def test_outputs_match_feature_info(cfg):
    model = build(cfg, out_indices=(0, 1, 2, 3))
    outs = model(torch.randn(2, 3, 64, 64))
    assert len(outs) == 4 and len(model.feature_info) == 4
    for out, info, ch in zip(outs, model.feature_info, model.out_channels):
        assert out.shape[1] == info['num_chs'] == ch
        assert 64 // out.shape[-1] == info['reduction']
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16, 32]
    # out_indices selects (and orders) the outputs; feature_info still describes every stage
    model = build(cfg, out_indices=(3, 1))
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == list(model.out_channels)
    assert model.out_channels == (model.feature_info[3]['num_chs'],
                                  model.feature_info[1]['num_chs'])


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
@pytest.mark.parametrize('frozen', [0, 1, 2])
def test_frozen_stages(cfg, frozen):
    assert_frozen_stages(build(cfg, frozen_stages=frozen), frozen)


@pytest.mark.parametrize('cfg', FAMILIES[:2] + FAMILIES[5:7], ids=IDS[:2] + IDS[5:7])
def test_norm_eval(cfg):
    assert_norm_eval(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
def test_with_cp_same_outputs_and_grads(cfg):
    ckpt = assert_with_cp_equivalent(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 64, 64))
    assert any(getattr(m, 'with_cp', False) for m in ckpt.modules())


DCN_FAMILIES = [c for c in FAMILIES if c['depth'] >= 50 or c['type'].endswith('ResNeSt')]


@pytest.mark.parametrize('cfg', DCN_FAMILIES,
                         ids=[f'{c["type"].split(".")[1]}-{c["depth"]}' for c in DCN_FAMILIES])
def test_dcn_stages_forward_backward(cfg):
    assert_dcn_stages(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 64, 64))


def test_dcn_fallback_on_stride_keeps_strided_convs_plain():
    from mmcv.ops import ModulatedDeformConv2d
    dcn = dict(type='DCNv2', deform_groups=1, fallback_on_stride=True)
    model = build(FAMILIES[1], dcn=dcn, stage_with_dcn=(False, True, True, True))
    for i in (2, 3, 4):
        layer = getattr(model, f'layer{i}')
        assert not isinstance(layer[0].conv2, ModulatedDeformConv2d)
        assert isinstance(layer[1].conv2, ModulatedDeformConv2d)


@pytest.mark.parametrize('cfg', [FAMILIES[1], FAMILIES[5], FAMILIES[6], FAMILIES[8]],
                         ids=['ResNet', 'ResNeSt', 'Res2Net', 'PreResNet'])
def test_plugins_inserted_where_asked(cfg):
    from mmcv.cnn.bricks import ContextBlock, GeneralizedAttention
    plugins = [
        dict(cfg=dict(type='ContextBlock', ratio=1. / 4), stages=(False, True, True, False),
             position='after_conv3'),
        dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=2,
                      attention_type='0010', kv_stride=2), stages=(False, False, True, True),
             position='after_conv2'),
    ]
    model = build(cfg, plugins=plugins)
    for i, name in enumerate(model.stage_names):
        for block in getattr(model, name):
            has_cb = any(isinstance(m, ContextBlock) for m in block.children())
            has_ga = any(isinstance(m, GeneralizedAttention) for m in block.children())
            assert has_cb == (i in (1, 2)) and has_ga == (i in (2, 3)), (name, has_cb, has_ga)
            assert block.plugin_names['after_conv3'] == (['context_block'] if has_cb else [])
    outs = model(torch.randn(2, 3, 64, 64))
    assert len(outs) == 4


def test_zero_init_residual_and_pretrained_prefix(tmp_path):
    model = build(FAMILIES[1], zero_init_residual=True)
    model.init_weights()
    assert all(block.norm3.weight.abs().sum() == 0 for block in model.layer1)
    # init_cfg Pretrained with prefix loads a detector's backbone weights
    src = build(FAMILIES[1])
    ckpt = {'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}}
    torch.save(ckpt, tmp_path / 'det.pth')
    model = build(FAMILIES[1], init_cfg=dict(type='Pretrained', prefix='backbone.',
                                             checkpoint=str(tmp_path / 'det.pth')))
    model.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_deprecated_pretrained_sets_init_cfg(tmp_path):
    with pytest.warns(DeprecationWarning):
        model = build(FAMILIES[0], pretrained=str(tmp_path / 'x.pth'))
    assert model.init_cfg == dict(type='Pretrained', checkpoint=str(tmp_path / 'x.pth'))


def test_d8_dilation_keeps_stride_8():
    model = build(dict(type='mmresfamily.ResNetV1c', depth=50), strides=(1, 2, 1, 1),
                  dilations=(1, 1, 2, 4), contract_dilation=True, multi_grid=(1, 2, 4))
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 8, 8]
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 8, 8]
    assert [b.dilation for b in model.layer4] == [1, 2, 4]
    assert [b.dilation for b in model.layer3][:2] == [1, 2]  # contracted first block


def test_gn_reaches_every_norm():
    model = build(FAMILIES[5], norm_cfg=dict(type='GN', num_groups=16))
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize('cfg,channels', [
    (FAMILIES[1], [256, 512, 1024]),
    (dict(type='mmresfamily.DenseNet', arch=121), [256, 512, 1024]),
    (dict(type='mmresfamily.DPN', arch='68'), [144, 320, 704]),
    (dict(type='mmresfamily.HarDNet', arch='68'), [128, 320, 640]),
], ids=['ResNet-50', 'DenseNet-121', 'DPN-68', 'HarDNet-68'])
def test_fewer_stages_take_per_stage_defaults(cfg, channels):
    """out_indices, strides, dilations and stage_with_dcn default to one entry per built stage."""
    model = build(cfg, num_stages=3)
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == channels == list(model.out_channels)
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16]
    assert model.out_indices == (0, 1, 2) and model.stage_with_dcn == (False, ) * 3
    assert len(model.stage_names) == 3
    assert not hasattr(model, 'layer4') and not hasattr(model, 'stage4')


# the options every backbone shares: BaseBackbone declares them, keyword-only; a family declares
# one again only to change its default
SHARED = ('in_channels', 'num_stages', 'out_indices', 'frozen_stages', 'norm_cfg', 'norm_eval',
          'with_cp', 'init_cfg', 'pretrained')
CHANGED_DEFAULTS = {'DenseNet': {'num_stages', 'with_cp'},  # its arch's blocks; alias resolved
                    'DPN': {'norm_cfg'}}  # BN eps 1e-3, as its original weights


def test_shared_options_are_keyword_only_and_declared_once():
    import inspect

    from mmresfamily.models.backbones import BaseBackbone
    params = inspect.signature(BaseBackbone.__init__).parameters
    assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in SHARED)
    families = [cls for cls in MODELS.module_dict.values() if issubclass(cls, BaseBackbone)]
    assert len(families) >= 12
    for family in families:
        for klass in family.__mro__[:family.__mro__.index(BaseBackbone)]:
            if '__init__' in vars(klass):
                declared = set(inspect.signature(klass.__init__).parameters) & set(SHARED)
                assert declared <= CHANGED_DEFAULTS.get(klass.__name__, set()), klass


@pytest.mark.parametrize('cfg', FAMILIES[:1] + [dict(type='mmresfamily.DenseNet', arch=121)],
                         ids=['ResNet', 'DenseNet'])
def test_an_unknown_argument_is_named_with_what_the_family_takes(cfg):
    from mmresfamily import ArgumentTypeError
    name = cfg['type'].split('.')[1]
    with pytest.raises(ArgumentTypeError, match=rf"{name} got unexpected arguments "
                       rf"\['frozen_stage'\]; it takes .*, frozen_stages, "):
        build(cfg, frozen_stage=1)
