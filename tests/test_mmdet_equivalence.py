"""Same weights in, same features out: mmdet / mmseg backbones vs ours with the same arguments."""
import pytest
import torch

from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_features_close, randomize_

mmdet_backbones = pytest.importorskip('mmdet.models.backbones')
mmseg_backbones = pytest.importorskip('mmseg.models.backbones')

DCN = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)
CASES = [
    # (reference class, our type, shared kwargs, our extra kwargs)
    (mmdet_backbones.ResNet, 'ResNet', dict(depth=50), {}),
    (mmdet_backbones.ResNet, 'ResNet', dict(depth=18, style='caffe'), {}),
    (mmdet_backbones.ResNetV1d, 'ResNetV1d', dict(depth=50), {}),
    (mmdet_backbones.ResNeXt, 'ResNeXt', dict(depth=50, groups=32, base_width=4), {}),
    (mmdet_backbones.ResNeSt, 'ResNeSt',
     dict(depth=50, stem_channels=64, radix=2, reduction_factor=4, avg_down_stride=True), {}),
    (mmdet_backbones.Res2Net, 'Res2Net', dict(depth=50, scales=4, base_width=26),
     dict(stride1_pool=False)),
    (mmdet_backbones.ResNet, 'ResNet',
     dict(depth=50, dcn=DCN, stage_with_dcn=(False, True, True, True)), {}),
    (mmdet_backbones.ResNet, 'ResNet',
     dict(depth=50, plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                                  stages=(False, True, True, True), position='after_conv3')]),
     {}),
    (mmseg_backbones.ResNetV1c, 'ResNetV1c',
     dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True), {}),
    (mmseg_backbones.ResNetV1c, 'ResNetV1c',
     dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), multi_grid=(1, 2, 4)), {}),
]


@pytest.mark.parametrize('ref_cls,our_type,kwargs,extra', CASES,
                         ids=[f'{c[0].__module__.split(".")[0]}-{c[1]}-{i}'
                              for i, c in enumerate(CASES)])
def test_reference_state_dict_loads_and_features_match(ref_cls, our_type, kwargs, extra):
    ref = randomize_(ref_cls(**kwargs), seed=2)
    ref.eval()  # mmdet's train() override returns None, so no chaining
    ours = MODELS.build(dict(type=f'mmresfamily.{our_type}', **kwargs, **extra)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_features_close(ours(x), ref(x), rtol=1e-5)


def test_res2net_official_pool_differs_from_mmdet():
    """The switch matters: official/timm behaviour pools the pass-through split at stride 1."""
    ref = randomize_(mmdet_backbones.Res2Net(depth=50), seed=3)
    ref.eval()
    ours = MODELS.build(dict(type='mmresfamily.Res2Net', depth=50)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x)[0] - ref(x)[0]).abs().max() > 1e-3
