"""tools/convert_weights.py beyond timm: torchvision ResNet/ResNeXt and the mmdet / mmseg /
mmpretrain backbones (bare, or inside a whole detector / segmentor / classifier checkpoint) give
the reference's stage outputs; the authors' own ResNeSt, Res2Net, HarDNet and RedNet releases
(their code is not installable here) are covered key by key: every key of a layout generated from
the official module structure is converted or dropped as a head, and the result loads strictly."""
import math

import numpy as np
import pytest
import torch

from mmresfamily.converters import convert
from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_converted_features_equal, randomize_, stage_taps

STAGES = ['layer1', 'layer2', 'layer3', 'layer4']


def assert_loads_strictly(cfg, state_dict):
    """Shapes and names: load into our backbone built on the meta device (no memory, no init)."""
    with torch.device('meta'):
        ours = MODELS.build(cfg)
    ours.load_state_dict(state_dict, strict=True)


# ---- torchvision ----------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['resnet18', 'resnet50', 'resnext50_32x4d'])
def test_torchvision_resnet_features_equal(name, tmp_path):
    torchvision = pytest.importorskip('torchvision')
    ref = randomize_(getattr(torchvision.models, name)(weights=None), seed=1).eval()
    _, converted = assert_converted_features_equal(tmp_path, 'torchvision', name,
                                                   ref.state_dict(), stage_taps(ref, STAGES))
    assert converted['meta']['dropped_keys'] == ['fc.weight', 'fc.bias']


@pytest.mark.parametrize('name', ['resnet34', 'resnet101', 'resnet152', 'resnext101_32x8d',
                                  'resnext101_64x4d'])
def test_torchvision_resnet_keys_complete(name):
    torchvision = pytest.importorskip('torchvision')
    with torch.device('meta'):
        ref = getattr(torchvision.models, name)(weights=None)
    state_dict, cfg, dropped = convert('torchvision', name, ref.state_dict())
    assert dropped == ['fc.weight', 'fc.bias']
    assert_loads_strictly(cfg, state_dict)


def test_torchvision_wide_resnet_is_refused():
    with pytest.raises(ValueError, match=r"torchvision model must be one of .*resnext101_64x4d"
                                         r"; got 'wide_resnet50_2'"):
        convert('torchvision', 'wide_resnet50_2', {})


# ---- mmdet / mmseg / mmpretrain -------------------------------------------------------------
ALL4 = dict(out_indices=(0, 1, 2, 3))
OPENMMLAB = [
    # (source, MODEL, reference class, its kwargs, checkpoint kind)
    ('mmdet', 'resnet50', 'ResNet', dict(depth=50), 'whole'),
    ('mmdet', 'resnet50_caffe', 'ResNet', dict(depth=50, style='caffe'), 'bare'),
    ('mmdet', 'resnet50_v1d', 'ResNetV1d', dict(depth=50), 'bare'),
    ('mmdet', 'resnext50_32x4d', 'ResNeXt', dict(depth=50, groups=32, base_width=4), 'bare'),
    ('mmdet', 'resnest50', 'ResNeSt', dict(depth=50, stem_channels=64), 'whole'),
    ('mmdet', 'res2net50_w26_s4', 'Res2Net', dict(depth=50, scales=4, base_width=26), 'whole'),
    ('mmseg', 'resnet50_v1c', 'ResNetV1c', dict(depth=50), 'whole'),
    # mmseg's ResNeSt configs use a 128-wide stem (ours defaults to 64 at depth 50)
    ('mmseg', 'resnest50', 'ResNeSt', dict(depth=50, stem_channels=128), 'bare'),
    ('mmpretrain', 'resnet18', 'ResNet', dict(depth=18, **ALL4), 'whole'),
    ('mmpretrain', 'resnet50_v1c', 'ResNetV1c', dict(depth=50, **ALL4), 'bare'),
    ('mmpretrain', 'resnet50_v1d', 'ResNetV1d', dict(depth=50, **ALL4), 'whole'),
    ('mmpretrain', 'resnext50_32x4d', 'ResNeXt',
     dict(depth=50, groups=32, width_per_group=4, **ALL4), 'bare'),
    ('mmpretrain', 'resnest50', 'ResNeSt', dict(depth=50, stem_channels=64, **ALL4), 'whole'),
    ('mmpretrain', 'res2net50_w26_s4', 'Res2Net', dict(depth=50, **ALL4), 'bare'),
    # the ports of the original (not v1b) Res2Net: 7x7 stem, strided-conv shortcuts
    ('mmpretrain', 'res2net50_w14_s8', 'Res2Net',
     dict(depth=50, scales=8, base_width=14, deep_stem=False, avg_down=False, **ALL4), 'whole'),
]
PACKAGE = dict(mmdet='mmdet.models.backbones', mmseg='mmseg.models.backbones',
               mmpretrain='mmpretrain.models.backbones')
# what a whole checkpoint adds around the backbone (shapes are irrelevant: they are dropped)
NON_BACKBONE = dict(
    mmdet=['neck.lateral_convs.0.conv.weight', 'rpn_head.rpn_conv.weight',
           'roi_head.bbox_head.fc_cls.weight'],
    mmseg=['decode_head.conv_seg.weight', 'auxiliary_head.conv_seg.bias'],
    mmpretrain=['head.fc.weight', 'head.fc.bias'])


def whole_checkpoint(source, backbone_state_dict):
    """A runner checkpoint as mmengine saves it (numpy scalars in meta included)."""
    state_dict = {f'backbone.{k}': v for k, v in backbone_state_dict.items()}
    state_dict.update({k: torch.zeros(2) for k in NON_BACKBONE[source]})
    return {'meta': {'epoch': 12, 'lr': np.float64(0.02), 'dataset_meta': {'classes': ('a', )}},
            'state_dict': state_dict}


def build_reference(source, cls_name, kwargs):
    module = pytest.importorskip(PACKAGE[source])
    ref = randomize_(getattr(module, cls_name)(**kwargs), seed=2)
    ref.eval()  # mmdet's train() returns None: no chaining
    return ref


@pytest.mark.parametrize('source,name,cls_name,kwargs,kind', OPENMMLAB,
                         ids=[f'{c[0]}-{c[1]}-{c[4]}' for c in OPENMMLAB])
def test_openmmlab_features_equal(source, name, cls_name, kwargs, kind, tmp_path):
    ref = build_reference(source, cls_name, kwargs)
    checkpoint = ref.state_dict()
    if kind == 'whole':
        checkpoint = whole_checkpoint(source, checkpoint)
    _, converted = assert_converted_features_equal(tmp_path, source, name, checkpoint, ref)
    expect_dropped = NON_BACKBONE[source] if kind == 'whole' else []
    assert converted['meta']['dropped_keys'] == expect_dropped


def test_mmpretrain_densenet_features_equal(tmp_path):
    ref = build_reference('mmpretrain', 'DenseNet', dict(arch='121'))
    # mmpretrain emits stages after their transitions; ours before: tap its dense blocks
    taps = ['stages.0', 'stages.1', 'stages.2', 'transitions.3']
    _, converted = assert_converted_features_equal(
        tmp_path, 'mmpretrain', 'densenet121', whole_checkpoint('mmpretrain', ref.state_dict()),
        stage_taps(ref, taps))
    assert converted['meta']['backbone_cfg'] == dict(type='mmresfamily.DenseNet', arch=121)


def test_openmmlab_cfg_records_what_the_weights_do_not_say():
    """Res2Net: mmdet skips the stride-1 pool (stride1_pool=False); v1b-ness comes from keys."""
    mmdet = pytest.importorskip('mmdet.models.backbones')
    with torch.device('meta'):
        state_dict = mmdet.Res2Net(depth=50).state_dict()
    _, cfg, _ = convert('mmdet', 'res2net50_w26_s4', state_dict)
    assert cfg == dict(type='mmresfamily.Res2Net', depth=50, base_width=26, scales=4,
                       stem_channels=64, deep_stem=True, avg_down=True, stride1_pool=False)


@pytest.mark.parametrize('source,name,allowed', [
    ('mmdet', 'densenet121', 'resnet{D}[_caffe]'),
    ('mmseg', 'res2net50_w26_s4', 'resnest{D}'),
    ('mmpretrain', 'resnet51', 'densenet{D}'),
])
def test_openmmlab_unknown_names_list_the_allowed_ones(source, name, allowed, load_tool,
                                                       tmp_path, capsys):
    with pytest.raises(ValueError, match=rf"model \(the {source} backbone name\) must be one of"):
        convert(source, name, {})
    src = tmp_path / 'in.pth'
    torch.save({'conv1.weight': torch.zeros(1)}, src)
    with pytest.raises(SystemExit):
        load_tool('convert_weights').main([source, name, str(src), str(tmp_path / 'out.pth')])
    err = capsys.readouterr().err
    assert allowed in err and repr(name) in err


# ---- official releases: key coverage --------------------------------------------------------
def bn(prefix, channels):
    keys = {f'{prefix}.{n}': (channels, ) for n in ('weight', 'bias', 'running_mean',
                                                     'running_var')}
    return {**keys, f'{prefix}.num_batches_tracked': ()}


def conv(prefix, cout, cin, k, bias=False):
    return {f'{prefix}.weight': (cout, cin, k, k), **({f'{prefix}.bias': (cout, )} if bias else {})}


BLOCKS = {26: (1, 2, 4, 1), 38: (2, 3, 5, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3), 200: (3, 24, 36, 3), 269: (3, 30, 48, 8)}
FC = {'fc.weight': (1000, 2048), 'fc.bias': (1000, )}


def deep_stem(width):
    """`conv1` Sequential(conv, bn, relu, conv, bn, relu, conv) + `bn1` (ResNeSt, Res2Net v1b)."""
    return {**conv('conv1.0', width, 3, 3), **bn('conv1.1', width),
            **conv('conv1.3', width, width, 3), **bn('conv1.4', width),
            **conv('conv1.6', 2 * width, width, 3), **bn('bn1', 2 * width)}


def official_resnest(depth):
    """zhanghang1989/ResNeSt resnest/torch/models/{resnest,resnet,splat}.py: radix 2, groups 1,
    bottleneck_width 64, deep stem (stem_width 32 for 50, else 64), avg_down, avd."""
    stem_width = 32 if depth == 50 else 64
    keys, inplanes = deep_stem(stem_width), 2 * stem_width
    for i, num_blocks in enumerate(BLOCKS[depth]):
        planes = 64 * 2**i
        inter = max(planes * 2 // 4, 32)
        for j in range(num_blocks):
            p = f'layer{i + 1}.{j}'
            keys.update({**conv(f'{p}.conv1', planes, inplanes, 1), **bn(f'{p}.bn1', planes),
                         **conv(f'{p}.conv2.conv', 2 * planes, planes // 2, 3),  # groups=radix
                         **bn(f'{p}.conv2.bn0', 2 * planes),
                         **conv(f'{p}.conv2.fc1', inter, planes, 1, bias=True),
                         **bn(f'{p}.conv2.bn1', inter),
                         **conv(f'{p}.conv2.fc2', 2 * planes, inter, 1, bias=True),
                         **conv(f'{p}.conv3', 4 * planes, planes, 1), **bn(f'{p}.bn3', 4 * planes)})
            if j == 0:  # AvgPool2d (no weights) at downsample.0, even at stride 1
                keys.update({**conv(f'{p}.downsample.1', 4 * planes, inplanes, 1),
                             **bn(f'{p}.downsample.2', 4 * planes)})
            inplanes = 4 * planes
    return {**keys, **FC}


def official_res2net(depth, base_width=26, scale=4, cardinality=1, v1b=False):
    """Res2Net/Res2Net-PretrainedModels res2net.py (7x7 stem, conv shortcuts), res2net_v1b.py
    (deep stem, AvgPool + conv shortcuts) and res2next.py (grouped 3x3s)."""
    keys = deep_stem(32) if v1b else {**conv('conv1', 64, 3, 7), **bn('bn1', 64)}
    inplanes = 64
    for i, num_blocks in enumerate(BLOCKS[depth]):
        planes = 64 * 2**i
        width = int(math.floor(planes * (base_width / 64.0))) * cardinality
        for j in range(num_blocks):
            p = f'layer{i + 1}.{j}'
            keys.update({**conv(f'{p}.conv1', width * scale, inplanes, 1),
                         **bn(f'{p}.bn1', width * scale),
                         **conv(f'{p}.conv3', 4 * planes, width * scale, 1),
                         **bn(f'{p}.bn3', 4 * planes)})
            for s in range(scale - 1):
                keys.update({**conv(f'{p}.convs.{s}', width, width // cardinality, 3),
                             **bn(f'{p}.bns.{s}', width)})
            if j == 0:
                first = 1 if v1b else 0  # v1b: AvgPool2d at downsample.0
                keys.update({**conv(f'{p}.downsample.{first}', 4 * planes, inplanes, 1),
                             **bn(f'{p}.downsample.{first + 1}', 4 * planes)})
            inplanes = 4 * planes
    return {**keys, **FC}


# PingoLH/Pytorch-HarDNet hardnet.py: first_ch, ch_list, grmul, gr, n_layers, downSamp
HARDNET = {
    68: ((32, 64), (128, 256, 320, 640, 1024), 1.7, (14, 16, 20, 40, 160), (8, 16, 16, 16, 4),
         (1, 0, 1, 1, 0)),
    85: ((48, 96), (192, 256, 320, 480, 720, 1280), 1.7, (24, 24, 28, 36, 48, 256),
         (8, 16, 16, 16, 16, 4), (1, 0, 1, 0, 1, 0)),
    39: ((24, 48), (96, 320, 640, 1024), 1.6, (16, 20, 64, 160), (4, 16, 8, 4), (1, 1, 1, 0)),
}


def hardnet_link(layer, base_ch, growth_rate, grmul):
    """HarDBlock.get_link: (out channels, in channels) of a harmonic layer."""
    if layer == 0:
        return base_ch, 0
    out_ch, links = growth_rate, []
    for i in range(10):
        if layer % 2**i == 0:
            links.append(layer - 2**i)
            if i > 0:
                out_ch *= grmul
    out_ch = int(int(out_ch + 1) / 2) * 2
    return out_ch, sum(hardnet_link(k, base_ch, growth_rate, grmul)[0] for k in links)


def official_hardnet(arch, depth_wise):
    """One flat `base` ModuleList: ConvLayer = conv/norm/relu, DWConvLayer = dwconv/norm,
    CombConvLayer = layer1 (1x1 ConvLayer) + layer2 (DWConvLayer); head Sequential(pool,
    flatten, dropout, linear) last."""
    first_ch, ch_list, grmul, gr, n_layers, down = HARDNET[arch]
    keys = {}

    def conv_layer(p, cin, cout, k):
        keys.update({**conv(f'{p}.conv', cout, cin, k), **bn(f'{p}.norm', cout)})

    def dw_layer(p, c):
        keys.update({**conv(f'{p}.dwconv', c, 1, 3), **bn(f'{p}.norm', c)})

    conv_layer('base.0', 3, first_ch[0], 3)
    conv_layer('base.1', first_ch[0], first_ch[1], 1 if depth_wise else 3)
    if depth_wise:  # else a max pool
        dw_layer('base.2', first_ch[1])
    index, ch = 3, first_ch[1]
    for i, num_layers in enumerate(n_layers):
        block_out = 0
        for layer in range(num_layers):
            out_ch, in_ch = hardnet_link(layer + 1, ch, gr[i], grmul)
            p = f'base.{index}.layers.{layer}'
            if depth_wise:
                conv_layer(f'{p}.layer1', in_ch, out_ch, 1)
                dw_layer(f'{p}.layer2', out_ch)
            else:
                conv_layer(p, in_ch, out_ch, 3)
            if layer % 2 == 0 or layer == num_layers - 1:
                block_out += out_ch
        index += 2 if i == len(n_layers) - 1 and arch == 85 else 1  # HarDNet-85: Dropout
        conv_layer(f'base.{index}', block_out, ch_list[i], 1)
        index, ch = index + 1, ch_list[i]
        if down[i]:
            if depth_wise:
                dw_layer(f'base.{index}', ch)
            index += 1
    return {**keys, f'base.{index}.3.weight': (1000, ch), f'base.{index}.3.bias': (1000, )}


def official_rednet(depth):
    """d-li14/involution cls/mmcls/models/backbones/rednet.py inside an mmcls ImageClassifier:
    ConvModule = conv (+ bn), involution = conv1 (ConvModule with BN) + conv2 (ConvModule, bias),
    group_channels 16, reduction 4; stem conv / involution(3x3) / bn / relu / conv."""
    keys = {}

    def conv_module(p, cin, cout, k, norm=True):
        keys.update(conv(f'{p}.conv', cout, cin, k, bias=not norm))
        keys.update(bn(f'{p}.bn', cout) if norm else {})

    def involution(p, c, k):
        conv_module(f'{p}.conv1', c, c // 4, 1)
        conv_module(f'{p}.conv2', c // 4, k * k * (c // 16), 1, norm=False)

    conv_module('stem.0', 3, 32, 3)
    involution('stem.1', 32, 3)
    keys.update(bn('stem.2', 32))
    conv_module('stem.4', 32, 64, 3)
    inplanes = 64
    for i, num_blocks in enumerate(BLOCKS[depth]):
        planes = 64 * 2**i
        for j in range(num_blocks):
            p = f'layer{i + 1}.{j}'
            keys.update({**conv(f'{p}.conv1', planes, inplanes, 1), **bn(f'{p}.bn1', planes),
                         **bn(f'{p}.bn2', planes), **conv(f'{p}.conv3', 4 * planes, planes, 1),
                         **bn(f'{p}.bn3', 4 * planes)})
            involution(f'{p}.conv2', planes, 7)
            if j == 0:
                keys.update({**conv(f'{p}.downsample.0', 4 * planes, inplanes, 1),
                             **bn(f'{p}.downsample.1', 4 * planes)})
            inplanes = 4 * planes
    return {**{f'backbone.{k}': v for k, v in keys.items()},
            'head.fc.weight': (1000, 2048), 'head.fc.bias': (1000, )}


OFFICIAL = {
    'resnest50': lambda: official_resnest(50),
    'resnest101': lambda: official_resnest(101),
    'resnest200': lambda: official_resnest(200),
    'resnest269': lambda: official_resnest(269),
    'res2net50_26w_4s': lambda: official_res2net(50),
    'res2net50_48w_2s': lambda: official_res2net(50, 48, 2),
    'res2net50_14w_8s': lambda: official_res2net(50, 14, 8),
    'res2net50_26w_6s': lambda: official_res2net(50, 26, 6),
    'res2net50_26w_8s': lambda: official_res2net(50, 26, 8),
    'res2net101_26w_4s': lambda: official_res2net(101),
    'res2net50_v1b_26w_4s': lambda: official_res2net(50, v1b=True),
    'res2net101_v1b_26w_4s': lambda: official_res2net(101, v1b=True),
    'res2net152_v1b_26w_4s': lambda: official_res2net(152, v1b=True),
    'res2next50': lambda: official_res2net(50, base_width=4, cardinality=8),
    'hardnet68': lambda: official_hardnet(68, False),
    'hardnet85': lambda: official_hardnet(85, False),
    'hardnet39ds': lambda: official_hardnet(39, True),
    'hardnet68ds': lambda: official_hardnet(68, True),
    **{f'rednet{d}': (lambda d=d: official_rednet(d)) for d in (26, 38, 50, 101, 152)},
}


@pytest.mark.parametrize('name', list(OFFICIAL))
def test_official_layout_keys_complete(name):
    shapes = OFFICIAL[name]()
    state_dict = {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    converted, cfg, dropped = convert('official', name, state_dict)
    # every official key is converted, or dropped as the 1000-class classifier's
    assert sorted(dropped) == sorted(k for k, s in shapes.items() if s[:1] == (1000, ))
    assert len(converted) + len(dropped) == len(state_dict)
    assert_loads_strictly(cfg, converted)


# timm ported the official ResNeSt / Res2Net code keeping its module names: the generated official
# layouts equal timm's (so tests/test_timm_equivalence.py's equal outputs carry over)
@pytest.mark.parametrize('official,timm_name', [
    ('resnest50', 'resnest50d'), ('resnest101', 'resnest101e'),
    ('res2net50_26w_4s', 'res2net50_26w_4s'), ('res2net50_v1b_26w_4s', 'res2net50d'),
    ('res2next50', 'res2next50')])
def test_official_layout_is_timms(official, timm_name):
    timm = pytest.importorskip('timm')
    with torch.device('meta'):
        ref = timm.create_model(timm_name, pretrained=False)
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == OFFICIAL[official]()


@pytest.mark.parametrize('name', ['res2next50', 'resnest50'])
def test_official_features_equal_through_timm_port(name, tmp_path):
    """Weights in the official layout (a random timm port, whose module names and forward are the
    official ones) give the same features after conversion."""
    timm = pytest.importorskip('timm')
    timm_name = dict(res2next50='res2next50', resnest50='resnest50d')[name]
    ref = randomize_(timm.create_model(timm_name, pretrained=False), seed=3).eval()
    _, converted = assert_converted_features_equal(tmp_path, 'official', name,
                                                   ref.state_dict(), stage_taps(ref, STAGES))
    assert converted['meta']['dropped_keys'] == ['fc.weight', 'fc.bias']


def test_official_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"official model must be one of resnest\{50,101,200,269"
                                         r"\}.*; got 'hardnet39'"):
        convert('official', 'hardnet39', {})


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}', )


def test_runner_checkpoint_allow_list_still_refuses_code(load_tool, tmp_path):
    """mmdet/mmseg/mmpretrain inputs load with the runner-checkpoint allow-list, nothing more."""
    from mmresfamily.utils import CheckpointRefusedError
    marker = tmp_path / 'pwned'
    src = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}, 'meta': _Exploit(marker)},
               src)
    with pytest.raises(CheckpointRefusedError):
        load_tool('convert_weights').main(['mmdet', 'resnet50', str(src),
                                           str(tmp_path / 'out.pth')])
    assert not marker.exists()
