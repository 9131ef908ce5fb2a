"""Plain names through `mmresfamily.integrations.*` accept what mmdet's, mmseg's and
mmpretrain's own backbone classes accept (their unit tests' argument spellings, their stock
configs) and give the outputs those tests check; where a toolbox's defaults differ from ours, its
plain names keep its defaults (docs/differences.md)."""
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope, init_default_scope

from mmresfamily.converters import convert
from mmresfamily.models import backbones as ours
from mmresfamily.models.backbones.resnet import Bottleneck, ResBlock
from mmresfamily.registry import MODELS as OUR_MODELS

SITE = Path(importlib.util.find_spec('mmengine').origin).parents[1]


@pytest.fixture
def toolbox(request):
    """(registry, the toolbox's own classes) with `mmresfamily.integrations.<name>` imported;
    the registry is restored afterwards so other tests see the toolbox's own classes."""
    name = request.param
    importlib.import_module(f'{name}.models')  # registers the toolbox's classes first
    registry = importlib.import_module(f'{name}.registry').MODELS
    theirs = dict(registry.module_dict)
    sys.modules.pop(f'mmresfamily.integrations.{name}', None)
    importlib.import_module(f'mmresfamily.integrations.{name}')
    try:
        with DefaultScope.overwrite_default_scope(name):
            yield registry, theirs
    finally:
        registry._module_dict.clear()
        registry._module_dict.update(theirs)
        sys.modules.pop(f'mmresfamily.integrations.{name}', None)


def run(model, x=None):
    """The features of `model` in eval mode (for a random 64x64 image when no `x`)."""
    model = revert_sync_batchnorm(model).eval()
    with torch.no_grad():
        return model(torch.randn(1, 3, 64, 64) if x is None else x)


def context_block(postfix, stages=None, position='after_conv3'):
    plugin = dict(cfg=dict(type='ContextBlock', ratio=1. / 16, postfix=postfix),
                  position=position)
    return plugin if stages is None else dict(plugin, stages=stages)


# ---- their unit tests' spellings, their checked outputs --------------------------------------
# (toolbox, backbone dict, channels of the outputs); outputs at strides 4/8/16/32 unless noted
SPELLINGS = [
    ('mmdet', dict(type='ResNeXt', depth=50, groups=32, base_width=4),
     (256, 512, 1024, 2048)),
    ('mmdet', dict(type='ResNeSt', depth=50, radix=2, reduction_factor=4,
                   out_indices=(0, 1, 2, 3)), (256, 512, 1024, 2048)),
    ('mmdet', dict(type='Res2Net', depth=50, scales=4, base_width=26), (256, 512, 1024, 2048)),
    ('mmdet', dict(type='ResNetV1d', depth=50, base_channels=2), (8, 16, 32, 64)),
    ('mmdet', dict(type='ResNet', depth=50, base_channels=4,
                   norm_cfg=dict(type='GN', num_groups=2, requires_grad=True)),
     (16, 32, 64, 128)),
    ('mmdet', dict(type='ResNet', depth=50, base_channels=8, plugins=[
        context_block(1, stages=(False, True, True, False)),
        context_block(2, stages=(False, True, True, False))]), (32, 64, 128, 256)),
    ('mmpretrain', dict(type='ResNeXt', depth=50, groups=32, width_per_group=4,
                        out_indices=(0, 1, 2, 3)), (256, 512, 1024, 2048)),
    ('mmpretrain', dict(type='ResNeXt', depth=50, groups=32, width_per_group=4,
                        out_indices=(3, )), (2048, )),
    ('mmpretrain', dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3), drop_path_rate=0.5),
     (256, 512, 1024, 2048)),
    ('mmpretrain', dict(type='ResNet', depth=50, base_channels=32, out_indices=(0, 1, 2, 3)),
     (128, 256, 512, 1024)),
    ('mmpretrain', dict(type='ResNet', depth=50, base_channels=128, expansion=2),
     (2048, )),  # wide-resnet50's backbone
    ('mmpretrain', dict(type='Res2Net', depth=101, out_indices=(0, 1, 2, 3), deep_stem=False,
                        avg_down=False), (256, 512, 1024, 2048)),
    ('mmpretrain', dict(type='ResNeSt', depth=50, radix=2, reduction_factor=4,
                        out_indices=(0, 1, 2, 3)), (256, 512, 1024, 2048)),
    ('mmpretrain', dict(type='DenseNet', arch='121'), (1024, )),
    ('mmpretrain', dict(type='DenseNet', arch='121', memory_efficient=True), (1024, )),
    ('mmpretrain', dict(type='DenseNet', arch='121', drop_rate=0.05), (1024, )),
    # five dense blocks: our taps are before each transition, mmpretrain's after it (half the
    # channels, one stride further) except the last, the same 647 channels at stride 64
    ('mmpretrain', dict(type='DenseNet', arch=dict(growth_rate=20, depths=[4, 8, 12, 16, 20],
                                                   init_channels=40),
                        out_indices=(0, 1, 2, 3, 4)), (120, 220, 350, 495, 647)),
    ('mmseg', dict(type='ResNetV1c', depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                   contract_dilation=True, multi_grid=(1, 2, 4)), (256, 512, 1024, 2048)),
]


@pytest.mark.parametrize('toolbox,cfg,channels', SPELLINGS, indirect=['toolbox'],
                         ids=[f'{t}-{c["type"]}-{i}' for i, (t, c, _) in enumerate(SPELLINGS)])
def test_their_spellings_build_ours_with_the_outputs_they_check(toolbox, cfg, channels):
    registry, _ = toolbox
    model = registry.build(cfg)
    assert type(model) is getattr(ours, cfg['type'])
    outs = run(model)
    assert [o.shape[1] for o in outs] == list(channels) == list(model.out_channels)
    assert [64 // o.shape[-1] for o in outs] == list(model.out_strides)


# ---- their defaults: a plain name reproduces the toolbox's own class --------------------------
PARITY = [
    ('mmdet', 'ResNet', dict(depth=50)),
    ('mmdet', 'ResNetV1d', dict(depth=50)),
    ('mmdet', 'ResNeXt', dict(depth=50)),  # mmdet's default groups=1
    ('mmdet', 'ResNeSt', dict(depth=101)),  # its stem is 64 wide at any depth
    ('mmdet', 'Res2Net', dict(depth=50)),  # no pooling of the stride-1 first block's split
    ('mmseg', 'ResNetV1c', dict(depth=50, base_channels=32)),  # its stem stays 64 wide
    ('mmseg', 'ResNeXt', dict(depth=50)),
    ('mmpretrain', 'ResNet', dict(depth=50)),  # the last stage only
    ('mmpretrain', 'ResNeXt', dict(depth=50)),
]


@pytest.mark.parametrize('toolbox,name,kwargs', PARITY, indirect=['toolbox'],
                         ids=[f'{t}-{n}' for t, n, _ in PARITY])
def test_plain_name_keeps_the_toolbox_defaults(toolbox, name, kwargs):
    """Same keys and shapes, so the toolbox's weights load, and the same features from them."""
    registry, theirs = toolbox
    reference = revert_sync_batchnorm(theirs[name](**kwargs))
    reference.eval()  # (their train() returns None)
    model = registry.build(dict(type=name, **kwargs))
    assert type(model) is getattr(ours, name)
    model.load_state_dict(reference.state_dict(), strict=True)
    assert model.norm_eval == reference.norm_eval
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = reference(x), run(model, x)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('toolbox', ['mmpretrain'], indirect=True)
def test_mmpretrain_densenet_default_is_its_classifier_feature(toolbox):
    registry, theirs = toolbox
    reference = theirs['DenseNet'](arch='121')
    reference.eval()
    state_dict, _, _ = convert('mmpretrain', 'densenet121', reference.state_dict())
    model = registry.build(dict(type='DenseNet', arch='121'))
    model.load_state_dict(state_dict, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        (expected, ), got = reference(x), run(model, x)
    assert len(got) == 1
    torch.testing.assert_close(got[0], expected, rtol=1e-4, atol=1e-4)


# ---- stock configs through the integrations ---------------------------------------------------
def build_stock(name, path):
    cfg = Config.fromfile(str(SITE / name / '.mim/configs' / path))
    init_default_scope(cfg.get('default_scope', name))
    from mmengine.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    assert type(model.backbone).__module__.startswith('mmresfamily.')
    return model


def forward_stock(name, model):
    with torch.no_grad():
        if name == 'mmdet':
            from mmdet.testing import demo_mm_inputs
            data = model.data_preprocessor(
                demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 64)], num_classes=80,
                               with_mask=True), False)
            assert len(model(**data, mode='predict')) == 1
        elif name == 'mmseg':
            out = model(torch.randn(1, 3, 64, 64), None, mode='tensor')
            assert out.shape[:2] == (1, model.decode_head.num_classes)
        else:
            assert model(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 1000)


STOCK = [
    ('mmpretrain', 'resnext/resnext50-32x4d_8xb32_in1k.py', dict(out_indices=(3, ))),
    ('mmpretrain', 'densenet/densenet121_4xb256_in1k.py', dict(out_indices=(3, ))),
    ('mmpretrain', 'resnet/resnet50_8xb256-rsb-a1-600e_in1k.py', dict(out_indices=(3, ))),
    ('mmpretrain', 'wrn/wide-resnet50_8xb32_in1k.py', dict(out_channels=(2048, ))),
    ('mmpretrain', 'res2net/res2net50-w14-s8_8xb32_in1k.py', dict(out_indices=(3, ))),
    # plugins (mmdet 3.3.0 ships the GCNet plugin configs for Mask R-CNN)
    ('mmdet', 'gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py', dict(norm_eval=True)),
    # leaves norm_eval to mmdet's default (True)
    ('mmdet', 'solo/decoupled-solo_r50_fpn_1x_coco.py', dict(norm_eval=True)),
    ('mmseg', 'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
     dict(out_strides=(4, 8, 8, 8))),
]


@pytest.mark.parametrize('toolbox,path,expected', STOCK, indirect=['toolbox'],
                         ids=[p.split('/')[1][:-3] for _, p, _ in STOCK])
def test_stock_config_builds_ours_and_runs(toolbox, path, expected, request):
    name = request.node.callspec.params['toolbox']
    model = build_stock(name, path)
    for attribute, value in expected.items():
        assert getattr(model.backbone, attribute) == value
    forward_stock(name, model)


@pytest.mark.parametrize('toolbox', ['mmpretrain'], indirect=True)
def test_rsb_config_spreads_stochastic_depth_over_the_blocks(toolbox):
    model = build_stock('mmpretrain', 'resnet/resnet50_8xb256-rsb-a1-600e_in1k.py')
    blocks = [m for m in model.backbone.modules() if isinstance(m, ResBlock)]
    rates = [b.drop_path.drop_prob if b.drop_path is not None else 0. for b in blocks]
    # mmpretrain's rule: linear from 0 (first block, no DropPath) to drop_path_rate (last)
    assert rates == pytest.approx([0.05 * i / (len(blocks) - 1) for i in range(len(blocks))])


@pytest.mark.parametrize('toolbox', ['mmpretrain'], indirect=True)
@pytest.mark.parametrize('depth', [50, 101, 152])
def test_layer_depth_for_learning_rate_decay_is_mmpretrains(toolbox, depth):
    registry, theirs = toolbox
    reference = theirs['ResNet'](depth=depth)
    model = registry.build(dict(type='ResNet', depth=depth))
    names = sorted(n for n, _ in reference.named_parameters())
    assert names == sorted(n for n, _ in model.named_parameters())
    names = ['backbone.' + n for n in names] + ['head.fc.weight']
    assert ([model.get_layer_depth(n, 'backbone.') for n in names]
            == [reference.get_layer_depth(n, 'backbone.') for n in names])


@pytest.mark.parametrize('toolbox', ['mmpretrain'], indirect=True)
def test_stock_layer_decay_config_builds_its_optimizer(toolbox):
    import mmpretrain.engine  # noqa: F401  registers its optimizers and constructors
    from mmengine.optim import build_optim_wrapper
    path = 'spark/benchmarks/resnet50_8xb256-coslr-300e_in1k.py'
    model = build_stock('mmpretrain', path)
    cfg = Config.fromfile(str(SITE / 'mmpretrain/.mim/configs' / path))
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups
    scales = {g['param_name']: g['lr_scale'] for g in groups}
    decay = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    # stem < stage 1 < stage 4 < head, one decay step apart at the ends
    assert scales['backbone.conv1.weight'] == pytest.approx(
        scales['backbone.layer1.0.conv1.weight'] * decay)
    assert scales['backbone.layer4.0.conv1.weight'] == pytest.approx(
        scales['head.fc.weight'] * decay)


# ---- plugins as mmdet writes them --------------------------------------------------------------
def test_block_plugins_take_postfix_from_cfg():
    block = Bottleneck(64, 16, plugins=[context_block(1, position='after_conv2'),
                                        context_block(2), context_block(3)])
    assert block.context_block1.in_channels == 16
    assert block.context_block2.in_channels == block.context_block3.in_channels == 64
    assert block(torch.randn(1, 64, 16, 16)).shape == (1, 64, 16, 16)


def test_stage_plugins_take_postfix_from_cfg():
    model = OUR_MODELS.build(dict(type='mmresfamily.ResNet', depth=50, base_channels=8, plugins=[
        context_block(1, stages=(False, True, True, False)),
        context_block(2, stages=(False, True, True, False))]))
    for stage, expected in zip((model.layer1, model.layer2, model.layer3, model.layer4),
                               (None, 64, 128, None)):
        for block in stage:
            names = {n for n, _ in block.named_children() if n.startswith('context_block')}
            if expected is None:
                assert not names
            else:
                assert names == {'context_block1', 'context_block2'}
                assert block.context_block2.in_channels == expected


def test_plugin_postfix_beside_cfg_still_works_and_must_agree():
    beside = dict(cfg=dict(type='ContextBlock', ratio=1. / 16), position='after_conv3',
                  postfix=7)
    assert Bottleneck(64, 16, plugins=[beside]).context_block7.in_channels == 64
    with pytest.raises(ValueError, match=r'postfix given twice .*in cfg: 1.*beside cfg: 7'):
        Bottleneck(64, 16, plugins=[dict(beside, cfg=dict(beside['cfg'], postfix=1))])


def test_block_refuses_an_unknown_plugin_position():
    with pytest.raises(ValueError, match=r"position must be one of \('after_conv1', "
                                         r"'after_conv2', 'after_conv3'\), got 'after_conv4'"):
        Bottleneck(64, 16, plugins=[context_block('', position='after_conv4')])


def test_duplicate_plugin_names_are_refused():
    with pytest.raises(ValueError, match=r"duplicate plugin name 'context_block'"):
        Bottleneck(64, 16, plugins=[context_block(''), context_block('')])


@pytest.mark.parametrize('plugins', [context_block(1), 'ContextBlock'], ids=['dict', 'str'])
@pytest.mark.parametrize('build', [
    lambda plugins: Bottleneck(64, 16, plugins=plugins),
    lambda plugins: OUR_MODELS.build(dict(type='mmresfamily.ResNet', depth=50,
                                          plugins=plugins)),
], ids=['Bottleneck', 'ResNet'])
def test_plugins_must_be_a_list(build, plugins):
    with pytest.raises(TypeError, match=r'plugins must be a list of dicts .*; got '
                                        f'{type(plugins).__name__}'):
        build(plugins)


# ---- mmpretrain's ResNet arguments, for every residual family -----------------------------------
RESIDUAL = [dict(type='ResNet', depth=50), dict(type='ResNet', depth=50, highway=True),
            dict(type='ResNeXt', depth=50), dict(type='ResNeSt', depth=50),
            dict(type='Res2Net', depth=50), dict(type='PreResNet', depth=50),
            dict(type='RedNet', depth=26), dict(type='DCDCResNet', depth=50)]
RESIDUAL_IDS = [c['type'] + ('-highway' if c.get('highway') else '') for c in RESIDUAL]


def build(cfg, **kwargs):
    return OUR_MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type'], **kwargs))


@pytest.mark.parametrize('cfg', RESIDUAL, ids=RESIDUAL_IDS)
def test_stochastic_depth_drops_residual_branches_in_training_only(cfg):
    model = build(cfg, base_channels=32, drop_path_rate=0.5)
    blocks = [m for m in model.modules() if isinstance(m, ResBlock)]
    rates = [b.drop_path.drop_prob if b.drop_path is not None else 0. for b in blocks]
    assert rates == pytest.approx([0.5 * i / (len(blocks) - 1) for i in range(len(blocks))])
    # in eval it is the model without stochastic depth
    plain = build(cfg, base_channels=32).eval()
    plain.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(x), model.eval()(x)):
            torch.testing.assert_close(a, b)
    # in training the last block keeps a sample's residual with probability 1 - 0.5
    drop_path = blocks[-1].drop_path.train()
    kept = [drop_path(torch.ones(64, 1, 1, 1)).flatten().ne(0) for _ in range(4)]
    fraction_kept = torch.cat(kept).float().mean().item()
    assert 0.35 < fraction_kept < 0.65


def test_a_dropped_residual_leaves_the_shortcut():
    block = Bottleneck(64, 16, drop_path_rate=0.5).train()
    x = torch.randn(64, 64, 8, 8)
    out = block(x)
    dropped = torch.tensor([torch.equal(o, torch.relu(i)) for o, i in zip(out, x)])
    assert 0 < dropped.sum() < len(x)  # some samples took the shortcut alone, not all
    block.eval()
    assert not any(torch.equal(o, torch.relu(i)) for o, i in zip(block(x), x))


@pytest.mark.parametrize('cfg', RESIDUAL, ids=RESIDUAL_IDS)
def test_expansion_widens_the_outputs(cfg):
    model = build(cfg, base_channels=32, expansion=2)
    assert model.out_channels == (64, 128, 256, 512)
    assert [o.shape[1] for o in run(model)] == list(model.out_channels)


def test_wide_resnet_matches_timm():
    timm = pytest.importorskip('timm')
    with torch.device('meta'):
        reference = timm.create_model('wide_resnet50_2', pretrained=False, num_classes=0)
        model = build(dict(type='ResNet', depth=50), base_channels=128, stem_channels=64,
                      expansion=2)
    assert ({k: v.shape for k, v in model.state_dict().items()}
            == {k: v.shape for k, v in reference.state_dict().items()})


@pytest.mark.parametrize('type_', ['ResNeXt', 'ResNeSt'])
def test_width_per_group_is_base_width(type_):
    with torch.device('meta'):
        a = build(dict(type=type_, depth=50), groups=8, width_per_group=8)
        b = build(dict(type=type_, depth=50), groups=8, base_width=8)
        default = build(dict(type=type_, depth=50), groups=8)
    shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in (a, b, default)]
    assert shapes[0] == shapes[1] != shapes[2]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(type='ResNeXt', depth=50, base_width=8, width_per_group=4), ValueError,
     r'base_width and width_per_group are one argument.*base_width=8, width_per_group=4'),
    (dict(type='ResNet', depth=18, expansion=2), ValueError,
     r'expansion must be 1 \(or None\) for BasicBlock'),
    (dict(type='ResNet', depth=50, expansion=0), ValueError,
     r'expansion must be a positive int; got 0'),
    (dict(type='ResNet', depth=50, drop_path_rate=1.0), ValueError,
     r'drop_path_rate must be in \[0, 1\); got 1.0'),
    (dict(type='DenseNet', arch=121, with_cp=True, memory_efficient=False), ValueError,
     r'with_cp and memory_efficient are one argument'),
    (dict(type='DenseNet', arch=121, act_cfg=dict(type='GELU')), ValueError,
     r"act_cfg must be None or ReLU .*got \{'type': 'GELU'\}"),
    (dict(type='DenseNet', arch=121, num_stages=5), ValueError,
     r'num_stages must be one of 1, 2, 3, 4; got 5'),
    (dict(type='DenseNet', arch=121, strides=(2, 2, 2, 2)), ValueError,
     r'strides\[0\] must be 1: stage 1 has no downsampling layer'),
    (dict(type='HarDNet', arch='68', output_stride=8, dilations=(1, 1, 2, 4)), ValueError,
     r'give either output_stride or strides/dilations, not both'),
])
def test_bad_new_arguments(kwargs, error, match):
    with torch.device('meta'):
        with pytest.raises(error, match=match):
            build(kwargs)


# ---- DenseNet: the arch decides the stages ------------------------------------------------------
def test_densenet_stages_follow_the_arch():
    arch = dict(growth_rate=8, depths=(1, 2, 1, 2, 1))
    with torch.device('meta'):
        model = build(dict(type='DenseNet', arch=arch))
        assert model.num_stages == 5 and model.out_indices == (0, 1, 2, 3, 4)
        assert len(model.stage_with_dcn) == 5
        assert len(model(torch.empty(1, 3, 128, 128))) == 5
        assert build(dict(type='DenseNet', arch=arch), num_stages=5).num_stages == 5
        three = build(dict(type='DenseNet', arch=arch), num_stages=3)
    assert three.num_stages == 3 and three.out_indices == (0, 1, 2)
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16, 32, 64]


def test_densenet_memory_efficient_checkpoints_every_dense_layer():
    from mmresfamily.models.backbones.densenet import DenseLayer
    model = build(dict(type='DenseNet', arch=121), memory_efficient=True, compression_factor=0.25)
    layers = [m for m in model.modules() if isinstance(m, DenseLayer)]
    assert layers and all(m.with_cp for m in layers)
    # compression_factor is mmpretrain's name for compression: a quarter of 256 channels kept
    assert model.stage2.transition.conv.out_channels == 64

