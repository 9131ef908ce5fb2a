"""Dense-connection families (DenseNet, DPN, HarDNet): same features as timm / torchvision with
converted weights, published parameter counts, shapes vs feature_info, clear argument errors."""

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmresfamily.registry import MODELS
from mmresfamily.testing import (
    assert_converted_features_equal,
    params_with_head,
    randomize_,
    stage_outputs,
    stage_taps,
)


# timm's feature taps (feature_info[1:]) are exactly our stages' outputs:
# densenet: the first three dense blocks' outputs (before their transitions) and the final
# norm+act (`features.norm5`, a BatchNormAct2d); dpn: the last block of each stage (the
# concatenated residual + dense paths, without the classifier-only `conv5_bn_ac`).
@pytest.mark.parametrize('name', ['densenet121', 'densenet169', 'dpn68', 'dpn68b', 'dpn92'])
def test_timm_features_equal(name, tmp_path):
    ref = randomize_(timm.create_model(name, pretrained=False), seed=1).eval()
    taps = [info['module'] for info in ref.feature_info[1:]]
    ours, converted = assert_converted_features_equal(tmp_path, 'timm', name, ref.state_dict(),
                                                      stage_taps(ref, taps))
    assert set(converted['meta']['dropped_keys']) <= {
        k for k in ref.state_dict() if k.startswith(('classifier.', 'features.conv5_bn_ac.'))}
    assert [(i['num_chs'], i['reduction']) for i in ref.feature_info[1:]] == \
        [(i['num_chs'], i['reduction']) for i in ours.feature_info]


@pytest.mark.parametrize('old_keys', [False, True], ids=['current-keys', 'pre-0.3-keys'])
def test_torchvision_densenet_features_equal(old_keys, tmp_path):
    torchvision = pytest.importorskip('torchvision')
    ref = randomize_(torchvision.models.densenet121(weights=None), seed=2).eval()
    state_dict = ref.state_dict()
    if old_keys:  # torchvision < 0.3 saved `denselayer1.norm.1.weight` for `norm1.weight`
        import re
        state_dict = {re.sub(r'(denselayer\d+\.(?:norm|conv))([12])\.', r'\1.\2.', k): v
                      for k, v in state_dict.items()}
        assert any('.norm.1.' in k for k in state_dict)
    taps = ['features.denseblock1', 'features.denseblock2', 'features.denseblock3',
            'features.norm5']

    def reference(x):
        feats = stage_outputs(ref, taps, x)
        feats[-1] = F.relu(feats[-1])  # torchvision applies the final relu in forward
        return feats

    assert_converted_features_equal(tmp_path, 'torchvision', 'densenet121', state_dict, reference)


def test_unknown_model_names_are_refused():
    from mmresfamily.converters import convert
    with pytest.raises(ValueError, match=r"torchvision model must be one of densenet121.*"
                                         r"got 'wide_resnet50_2'"):
        convert('torchvision', 'wide_resnet50_2', {})
    with pytest.raises(ValueError, match=r"timm model 'dpn48b' is not one"):
        convert('timm', 'dpn48b', {})


PUBLISHED = [  # millions of parameters with a 1000-class head, and the tolerance
    (dict(type='DenseNet', arch=121), 7.98, 0.005),
    (dict(type='DenseNet', arch=169), 14.15, 0.005),
    (dict(type='DenseNet', arch=201), 20.01, 0.005),
    (dict(type='DenseNet', arch=161), 28.68, 0.005),
    (dict(type='DPN', arch='68'), 12.61, 0.005),
    (dict(type='DPN', arch='92'), 37.67, 0.005),
    (dict(type='DPN', arch='98'), 61.57, 0.005),
    (dict(type='DPN', arch='131'), 79.25, 0.005),
    (dict(type='HarDNet', arch='68'), 17.6, 0.01),
    (dict(type='HarDNet', arch='85'), 36.7, 0.01),
    (dict(type='HarDNet', arch='39DS'), 3.5, 0.01),
    (dict(type='HarDNet', arch='68DS'), 4.2, 0.01),
]


@pytest.mark.parametrize('cfg,millions,tol', PUBLISHED,
                         ids=[f'{c["type"]}-{c["arch"]}' for c, _, _ in PUBLISHED])
def test_published_param_count(cfg, millions, tol):
    with torch.device('meta'):  # sizes only: no memory, no init
        model = MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type']))
    measured = params_with_head(model) / 1e6
    assert abs(measured - millions) / millions <= tol, f'{measured:.3f}M vs {millions}M'


ALL_ARCHS = ([dict(type='DenseNet', arch=a) for a in (121, 169, 201, 161, 264)] +
             [dict(type='DPN', arch=a) for a in ('68', '68b', '92', '98', '107', '131')] +
             [dict(type='HarDNet', arch=a) for a in ('39DS', '68', '68DS', '85')])


@pytest.mark.parametrize('cfg', ALL_ARCHS, ids=[f'{c["type"]}-{c["arch"]}' for c in ALL_ARCHS])
def test_outputs_match_feature_info(cfg):
    # meta tensors carry shapes through every op: the whole arch list checks in a second
    with torch.device('meta'):
        model = MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type']))
        outs = model(torch.empty(2, 3, 96, 128))
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16, 32]
    assert len(outs) == 4
    for out, info, channels in zip(outs, model.feature_info, model.out_channels):
        assert tuple(out.shape) == (2, channels, 96 // info['reduction'],
                                    128 // info['reduction'])
        assert channels == info['num_chs']
    with torch.device('meta'):
        model = MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type'], out_indices=(3, 1)))
        outs = model(torch.empty(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == list(model.out_channels) == \
        [model.feature_info[3]['num_chs'], model.feature_info[1]['num_chs']]


DILATABLE = [dict(type='DPN', arch='68'), dict(type='DenseNet', arch=121),
             dict(type='HarDNet', arch='68'), dict(type='HarDNet', arch='39DS')]


@pytest.mark.parametrize('kwargs,strides', [
    (dict(output_stride=8), (4, 8, 8, 8)),
    (dict(output_stride=16), (4, 8, 16, 16)),
    (dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)), (4, 8, 8, 8)),
])
@pytest.mark.parametrize('cfg', DILATABLE, ids=[f'{c["type"]}-{c["arch"]}' for c in DILATABLE])
def test_dilated_output_stride(cfg, kwargs, strides):
    """Segmentation features at stride 8/16: the stride-32 weights load unchanged, the stages
    before the first dilated one give the stride-32 model's features, and the resolution given
    up by the strides comes back as dilation of the 3x3 convs."""
    cfg = dict(cfg, type='mmresfamily.' + cfg['type'])
    plain = randomize_(MODELS.build(cfg)).eval()
    dilated = MODELS.build(dict(cfg, **kwargs)).eval()
    dilated.load_state_dict(plain.state_dict(), strict=True)
    assert tuple(i['reduction'] for i in dilated.feature_info) == strides
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, outs = plain(x), dilated(x)
    assert [64 // o.shape[-1] for o in outs] == list(strides)
    assert [o.shape[1] for o in outs] == [i['num_chs'] for i in plain.feature_info]
    # the stages before the first dilated one run at their stride-32 resolution
    shared = sum(s == i['reduction'] for s, i in zip(strides, plain.feature_info))
    assert shared >= 2
    for e, o in zip(expected[:shared], outs[:shared]):
        torch.testing.assert_close(o, e)
    convs = [m for m in getattr(dilated, dilated.stage_names[-1]).modules()
             if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.stride == (1, 1)]
    assert max(m.dilation[0] for m in convs) == 32 // strides[-1]


def test_scoped_names_build_from_mmseg_scope():
    from mmengine.registry import DefaultScope
    mmseg_models = pytest.importorskip('mmseg.registry').MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        for cfg in (dict(type='mmresfamily.DPN', arch='68', output_stride=8),
                    dict(type='mmresfamily.DenseNet', arch=121, num_stages=2,
                         out_indices=(0, 1), stage_with_dcn=(False, False)),
                    dict(type='mmresfamily.HarDNet', arch='39DS')):
            model = mmseg_models.build(dict(cfg, norm_cfg=dict(type='GN', num_groups=2)))
            assert type(model).__name__ == cfg['type'].split('.')[1]
            outs = model(torch.randn(1, 3, 32, 32))
            assert [o.shape[1] for o in outs] == list(model.out_channels)


def build(type_, **kwargs):
    return MODELS.build(dict(type='mmresfamily.' + type_, **kwargs))


@pytest.mark.parametrize('type_,kwargs,match', [
    ('DenseNet', dict(arch=122),
     r'arch must be one of 121, 169, 201, 161, 264 or a dict\(growth_rate=.*got 122'),
    ('DenseNet', dict(arch=dict(growth_rate=32)),
     r'arch dict needs keys growth_rate, depths and optionally init_channels; '
     r"got \['growth_rate'\]"),
    ('DenseNet', dict(arch=dict(growth_rate=8, depths=(2, 2)), num_stages=3),
     r'num_stages must be one of 1, 2; got 3'),
    ('DenseNet', dict(bn_size=0), r'bn_size must be a positive int; got 0'),
    ('DenseNet', dict(compression=1.5), r'compression must be in \(0, 1\]; got 1.5'),
    ('DenseNet', dict(drop_rate=1.0), r'drop_rate must be in \[0, 1\); got 1.0'),
    ('DenseNet', dict(frozen_stages=5), r'frozen_stages must be one of -1, 0, 1, 2, 3, 4'),
    ('DenseNet', dict(stage_with_dcn=(True, )),
     r'stage_with_dcn must have one entry per stage \(num_stages=4\); got 1'),
    ('DPN', dict(arch='93'),
     r"arch must be one of '68', '68b', '92', '98', '107', '131' or a dict.*got '93'"),
    ('DPN', dict(arch=dict(k_r=96)), r'arch dict needs exactly the keys \[.*\]; got \[.k_r.\]'),
    ('DPN', dict(output_stride=4), r'output_stride must be one of 32, 16, 8; got 4'),
    ('DPN', dict(output_stride=8, strides=(1, 2, 1, 1)),
     r'give either output_stride or strides/dilations, not both'),
    ('DPN', dict(strides=(1, 2, 3, 2)), r'strides entries must be one of 1, 2; got 3'),
    ('DPN', dict(strides=(1, 2, 2)), r'strides must have one entry per stage'),
    ('DPN', dict(dilations=(1, 1, 0, 1)), r'dilations entries must be positive ints'),
    ('DPN', dict(out_indices=(0, 4)), r'out_indices .* \[-4, 3\] .*got \(0, 4\)'),
    ('DPN', dict(dcn=dict(type='DCNv2'), conv_cfg=dict(type='Conv2d'),
                 stage_with_dcn=(False, False, False, True)),
     r'conv_cfg and dcn cannot be combined'),
    ('HarDNet', dict(arch='39'), r"arch must be one of '39DS', '68', '68DS', '85'; got '39'"),
    ('HarDNet', dict(drop_rate=-0.1), r'drop_rate must be None or in \[0, 1\); got -0.1'),
    ('HarDNet', dict(num_stages=5), r'num_stages must be one of 1, 2, 3, 4; got 5'),
])
def test_bad_arguments(type_, kwargs, match):
    with torch.device('meta'):
        with pytest.raises(ValueError, match=match):
            build(type_, **kwargs)


@pytest.mark.parametrize('type_,arch', [('DenseNet', 121), ('DPN', '68'), ('HarDNet', '68')])
def test_wrong_input_channels(type_, arch):
    with torch.device('meta'):
        model = build(type_, arch=arch)
        with pytest.raises(ValueError, match=r'expects input of shape \(N, 3, H, W\)'):
            model(torch.empty(1, 1, 32, 32))
