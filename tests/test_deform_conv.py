"""Our deformable convs (torchvision's operator) equal mmcv's DCN / DCNv2 on the same weights,
forward and backward; they replace mmcv's wherever `dcn` is given; DCN backbones are right for
channels_last input (mmcv's CPU kernel ignores the memory format) and deploy."""
import pytest
import torch
from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack

from mmresfamily.deploy import optimize_for_inference
from mmresfamily.models.layers import TorchDeformConv2d, TorchModulatedDeformConv2d
from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_features_close, randomize_, relative_max_diff

PAIRS = {'DCN': (DeformConv2dPack, TorchDeformConv2d),
         'DCNv2': (ModulatedDeformConv2dPack, TorchModulatedDeformConv2d)}
# (in, out, stride, padding, dilation, groups, deform_groups, bias): the options blocks use
OPTIONS = [(16, 16, 1, 1, 1, 1, 1, False), (16, 32, 2, 2, 2, 2, 4, False),
           (8, 8, 1, 1, 1, 8, 2, False), (16, 16, 2, 1, 1, 1, 2, True)]


def layer_pair(kind, in_ch, out_ch, stride, padding, dilation, groups, deform_groups, bias):
    mmcv_cls, ours_cls = PAIRS[kind]
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  deform_groups=deform_groups)
    if kind == 'DCNv2':
        kwargs['bias'] = bias
    ref = mmcv_cls(in_ch, out_ch, 3, **kwargs)
    # offsets of a few pixels, some reaching outside the image (zeros there)
    torch.nn.init.normal_(ref.conv_offset.weight, std=0.5)
    torch.nn.init.normal_(ref.conv_offset.bias, std=1.0)
    if getattr(ref, 'bias', None) is not None:
        torch.nn.init.normal_(ref.bias)
    ours = ours_cls(in_ch, out_ch, 3, **kwargs)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def forward_backward(layer, x):
    x = x.clone().requires_grad_()
    layer.zero_grad()
    out = layer(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return [out.detach(), x.grad] + [p.grad for _, p in sorted(layer.named_parameters())]


@pytest.mark.parametrize('options', OPTIONS, ids=lambda o: 'x'.join(map(str, o)))
@pytest.mark.parametrize('kind', PAIRS)
def test_equals_mmcv_forward_and_gradients(kind, options):
    ref, ours = layer_pair(kind, *options)
    x = torch.randn(2, options[0], 11, 13)
    got, expected = forward_backward(ours, x), forward_backward(ref, x)
    assert len(got) == len(expected)
    for name, a, b in zip(['output', 'input grad'] + sorted(dict(ref.named_parameters())),
                          got, expected):
        assert relative_max_diff(a, b) <= 1e-5, name


@pytest.mark.parametrize('kind', PAIRS)
def test_right_for_channels_last_input(kind):
    ref, ours = layer_pair(kind, *OPTIONS[1])
    x = torch.randn(2, 16, 12, 12)
    with torch.no_grad():
        expected = ref(x)  # mmcv on NCHW input, its supported case
        got = ours.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    assert relative_max_diff(got, expected) <= 1e-5


def dcn_backbone(kind='DCNv2', **kwargs):
    model = MODELS.build(dict(type='mmresfamily.ResNet', depth=50,
                              dcn=dict(type=kind, deform_groups=2, fallback_on_stride=False),
                              stage_with_dcn=(False, True, True, True), **kwargs))
    randomize_(model, seed=3)
    for m in model.modules():  # non-zero offsets: a plain conv would hide a sampling error
        if isinstance(m, (DeformConv2dPack, ModulatedDeformConv2dPack)):
            torch.nn.init.normal_(m.conv_offset.weight, std=0.05)
    return model.eval()


@pytest.mark.parametrize('kind', PAIRS)
def test_dcn_config_builds_the_torch_op_layers_with_mmcv_keys(kind):
    model = dcn_backbone(kind)
    dcn_layers = [m for m in model.modules() if isinstance(m, PAIRS[kind][0])]
    assert dcn_layers and all(type(m) is PAIRS[kind][1] for m in dcn_layers)
    # an mmdet checkpoint (mmcv's layers) loads strictly and gives the same features
    reference = MODELS.build(dict(type='mmresfamily.ResNet', depth=50,
                                  stage_with_dcn=(False, True, True, True),
                                  dcn=dict(type=kind, deform_groups=2)))
    for name, m in list(reference.named_modules()):
        if type(m) is PAIRS[kind][1]:
            mmcv_layer = PAIRS[kind][0](m.in_channels, m.out_channels, 3, stride=m.stride,
                                        padding=m.padding, dilation=m.dilation,
                                        deform_groups=m.deform_groups, bias=False)
            parent, _, child = name.rpartition('.')
            setattr(reference.get_submodule(parent), child, mmcv_layer)
    assert not any(type(m) is PAIRS[kind][1] for m in reference.modules())
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 96, 96)  # mmcv's DCN kernel refuses maps smaller than its kernel
    with torch.no_grad():
        assert_features_close(model(x), reference.eval()(x), rtol=1e-5)


@pytest.mark.parametrize('kind', PAIRS)
def test_dcn_backbone_channels_last_input(kind):
    """mmcv's CPU kernel reads NCHW memory: channels_last input gave features off by ~60 %."""
    model = dcn_backbone(kind)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        got = model(x.contiguous(memory_format=torch.channels_last))
        got_cl_model = model.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    assert_features_close(got, expected, rtol=1e-4)
    assert_features_close(got_cl_model, expected, rtol=1e-4)


def test_dcn_backbone_deploys_in_channels_last():
    model = dcn_backbone()
    deployed = optimize_for_inference(model, torch.randn(2, 3, 64, 64))
    assert deployed.deploy_memory_format == 'channels_last'
    y = torch.randn(1, 3, 80, 96)
    with torch.no_grad():
        assert_features_close(deployed(y), model(y), rtol=1e-4)
