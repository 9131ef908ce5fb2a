"""mmdet-style options behave: frozen_stages, norm_eval, with_cp, DCN, plugins, init, outputs."""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_frozen_stages, assert_with_cp_equivalent

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


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
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
    model = build(cfg, norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    before = [m.running_mean.clone() for m in bns]
    model(torch.randn(2, 3, 32, 32))
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    model = build(cfg, norm_eval=False).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
def test_with_cp_same_outputs_and_grads(cfg):
    ckpt = assert_with_cp_equivalent(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 64, 64))
    assert any(getattr(m, 'with_cp', False) for m in ckpt.modules())


DCN_FAMILIES = [c for c in FAMILIES if c['depth'] >= 50 or c['type'].endswith('ResNeSt')]


@pytest.mark.parametrize('cfg', DCN_FAMILIES,
                         ids=[f'{c["type"].split(".")[1]}-{c["depth"]}' for c in DCN_FAMILIES])
def test_dcn_stages_forward_backward(cfg):
    from mmcv.ops import ModulatedDeformConv2d
    dcn = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)
    dcn_copy = copy.deepcopy(dcn)
    model = build(cfg, dcn=dcn, stage_with_dcn=(False, False, True, True))
    assert dcn == dcn_copy, 'the user dcn dict must not be mutated'
    model.init_weights()
    dcn_layers = [n for n, m in model.named_modules() if isinstance(m, ModulatedDeformConv2d)]
    assert dcn_layers and all(n.startswith(('layer3', 'layer4')) for n in dcn_layers)
    # mmcv's DCN zero-inits its offsets: the deformable conv starts as a regular conv
    assert all(m.conv_offset.weight.abs().sum() == 0 for m in model.modules()
               if hasattr(m, 'conv_offset'))
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.mean() for o in outs).backward()
    offset_grads = [m.conv_offset.weight.grad for m in model.modules()
                    if hasattr(m, 'conv_offset')]
    assert all(g is not None and torch.isfinite(g).all() for g in offset_grads)


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


def test_fewer_stages_take_per_stage_defaults():
    model = build(FAMILIES[1], num_stages=3)
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [256, 512, 1024] == list(model.out_channels)
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16]
    assert not hasattr(model, 'layer4')
