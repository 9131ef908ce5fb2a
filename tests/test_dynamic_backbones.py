"""RedNet and DCDC-ResNet: published sizes, outputs vs feature_info, the mmdet options, configs
reaching every layer, and a short real training run on Fashion-MNIST."""
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmresfamily.models.layers import DCDC, Involution
from mmresfamily.registry import MODELS
from mmresfamily.testing import (
    assert_frozen_stages,
    assert_norm_eval,
    assert_with_cp_equivalent,
    params_with_head,
)
from mmresfamily.train_fashion_mnist import train

BACKBONES = [dict(type='mmresfamily.RedNet', depth=d) for d in (26, 38, 50, 101, 152)] + \
    [dict(type='mmresfamily.DCDCResNet', depth=d) for d in (50, 101)]
IDS = [f'{c["type"].split(".")[1]}-{c["depth"]}' for c in BACKBONES]
SMALL = [BACKBONES[0], BACKBONES[5]]  # RedNet-26, DCDC-ResNet-50
SMALL_IDS = [IDS[0], IDS[5]]


def build(cfg, **kwargs):
    return MODELS.build(dict(cfg, **kwargs))


@pytest.mark.parametrize('depth,millions', [(26, 9.23), (38, 12.39), (50, 15.54), (101, 25.65),
                                            (152, 33.99)])
def test_rednet_published_param_counts(depth, millions):
    with torch.device('meta'):
        model = MODELS.build(dict(type='mmresfamily.RedNet', depth=depth))
    measured = params_with_head(model) / 1e6
    assert abs(measured - millions) / millions <= 0.005, f'{measured:.3f}M vs {millions}M'


@pytest.mark.parametrize('depth', [50, 101])
def test_dcdc_resnet_has_fewer_params_than_resnet(depth):
    with torch.device('meta'):
        dcdc = params_with_head(MODELS.build(dict(type='mmresfamily.DCDCResNet', depth=depth)))
        resnet = params_with_head(MODELS.build(dict(type='mmresfamily.ResNet', depth=depth)))
    assert dcdc < 0.8 * resnet, (dcdc, resnet)


def test_dcdc_resnet_has_fewer_macs_than_resnet():
    from mmengine.analysis import FlopAnalyzer

    def macs(cfg):
        model = MODELS.build(cfg).eval()
        analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, 64, 64), ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        # the per-location involution products are elementwise ops the analyzer does not count
        extra = []
        hooks = [m.register_forward_hook(
            lambda mod, inp, out: extra.append(mod.kernel_size**2 * out.numel()))
            for m in model.modules() if isinstance(m, Involution)]
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
        for hook in hooks:
            hook.remove()
        return analyzer.total() + sum(extra)

    dcdc = macs(dict(type='mmresfamily.DCDCResNet', depth=50))
    resnet = macs(dict(type='mmresfamily.ResNet', depth=50))
    assert dcdc < 0.8 * resnet, (dcdc, resnet)


@pytest.mark.parametrize('cfg', BACKBONES, ids=IDS)
def test_outputs_match_feature_info_forward_backward(cfg):
    model = build(cfg)
    assert len([m for m in model.modules() if isinstance(m, (Involution, DCDC))]) >= \
        sum(model.stage_blocks), 'every bottleneck has the dynamic operator'
    model.train()
    outs = model(torch.randn(2, 3, 32, 32))
    assert len(outs) == 4
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16, 32]
    for out, info, ch in zip(outs, model.feature_info, model.out_channels):
        assert out.shape[1] == info['num_chs'] == ch
        assert 32 // out.shape[-1] == info['reduction']
    sum(o.mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
@pytest.mark.parametrize('frozen', [0, 1, 2])
def test_frozen_stages(cfg, frozen):
    assert_frozen_stages(build(cfg, frozen_stages=frozen), frozen)


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_norm_eval_freezes_every_bn_including_the_generators(cfg):
    model = assert_norm_eval(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 32, 32))
    generator_bns = [m for op in model.modules() if isinstance(op, Involution)
                     for m in op.modules() if isinstance(m, _BatchNorm)]
    assert generator_bns and all(not m.training for m in generator_bns)


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_with_cp_same_outputs_and_grads(cfg):
    ckpt = assert_with_cp_equivalent(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 32, 32))
    assert all(block.with_cp for layer in ckpt.stage_names for block in getattr(ckpt, layer))


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_gn_reaches_every_norm(cfg):
    bn_count = sum(isinstance(m, _BatchNorm) for m in build(cfg).modules())
    model = build(cfg, norm_cfg=dict(type='GN', num_groups=8))
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in model.modules()) == bn_count
    model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_conv_cfg_reaches_every_conv(cfg):
    model = build(cfg, conv_cfg=dict(type='ConvWS'))
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    plain = [n for n, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and type(m).__name__ != 'ConvWS2d']
    assert convs and not plain, plain[:5]


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_d8_dilation_keeps_stride_8(cfg):
    model = build(cfg, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 8, 8]
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 8, 8]
    for name, dilation in (('layer3', 2), ('layer4', 4)):
        ops = [m for m in getattr(model, name).modules() if isinstance(m, Involution)]
        assert len(ops) == len(getattr(model, name))  # the LSA branch of DCDC is one too
        assert all(op.dilation == dilation and op.stride == 1 for op in ops)


@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_init_zero_residual_and_pretrained_roundtrip(cfg, tmp_path):
    model = build(cfg)
    model.init_weights()
    assert all(block.norm3.weight.abs().sum() == 0 for block in model.layer1)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()}},
               tmp_path / 'det.pth')
    loaded = build(cfg, init_cfg=dict(type='Pretrained', prefix='backbone.',
                                      checkpoint=str(tmp_path / 'det.pth')))
    loaded.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_registry_build_and_errors():
    model = MODELS.build(dict(type='mmresfamily.RedNet', depth=26))
    assert type(model).__name__ == 'RedNet'
    assert [type(m).__name__ for m in model.stem] == ['ConvModule', 'Involution', 'BatchNorm2d',
                                                      'ReLU', 'ConvModule']
    with pytest.raises(ValueError, match='depth must be one of 26, 38, 50, 101, 152'):
        MODELS.build(dict(type='mmresfamily.RedNet', depth=18))
    with pytest.raises(ValueError, match='depth must be one of 50, 101'):
        MODELS.build(dict(type='mmresfamily.DCDCResNet', depth=26))
    for name in ('RedNet', 'DCDCResNet'):
        with pytest.raises(ValueError, match=f'dcn is not supported by {name}'):
            MODELS.build(dict(type=f'mmresfamily.{name}', depth=50, dcn=dict(type='DCNv2')))


@pytest.mark.slow
@pytest.mark.parametrize('cfg', SMALL, ids=SMALL_IDS)
def test_short_fashion_mnist_training_learns(cfg):
    """640 real training images, 40 iterations; accuracy on 500 held-out test images."""
    result = train(cfg, iters=40, batch_size=32, size=32, train_images=640,
                        test_images=500, bn_batches=10, log=None)
    assert result['final_loss'] < 0.6 * result['first_loss'], result
    assert result['test_accuracy'] > 0.4, result  # chance is 0.1
