"""BN folding and the deploy path are exact for every family; channels_last inputs work;
torch.compile captures; the inference max pool equals nn.MaxPool2d."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmresfamily.deploy import fold_batchnorm, optimize_for_inference
from mmresfamily.models.layers import MaxPool2d
from mmresfamily.registry import MODELS
from mmresfamily.testing import (
    assert_features_close,
    computes_dynamic_kernels,
    default_init_calibrated_,
    randomize_,
)

# every family; `pre_act`: norms that follow an add/concat (pre-activation) cannot be folded
FAMILIES = {
    'ResNet-18': dict(type='ResNet', depth=18),
    'ResNetV1c-50': dict(type='ResNetV1c', depth=50),
    'ResNetV1d-50': dict(type='ResNetV1d', depth=50),
    'ResNeXt-50': dict(type='ResNeXt', depth=50),
    'ResNeSt-50': dict(type='ResNeSt', depth=50),
    'Res2Net-50': dict(type='Res2Net', depth=50),
    'PreResNet-50': dict(type='PreResNet', depth=50),
    # raw stage outputs: a block's in-place `out += identity` feeds the next block's first norm
    'PreResNet-50-raw': dict(type='PreResNet', depth=50, out_norm=False),
    'ResNet-50-highway': dict(type='ResNet', depth=50, highway=True),
    'DenseNet-121': dict(type='DenseNet', arch=121),
    'DPN-68': dict(type='DPN', arch='68'),
    'HarDNet-68': dict(type='HarDNet', arch='68'),
    'RedNet-26': dict(type='RedNet', depth=26),
    'DCDC-ResNet-50': dict(type='DCDCResNet', depth=50),
}
PRE_ACTIVATION = {'PreResNet-50', 'PreResNet-50-raw', 'DenseNet-121', 'DPN-68'}


def build(name):
    cfg = FAMILIES[name]
    model = MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type']))
    if computes_dynamic_kernels(model):
        return default_init_calibrated_(model, seed=5)
    return randomize_(model, seed=5).eval()


@pytest.mark.parametrize('name', FAMILIES)
def test_fold_batchnorm_is_exact(name):
    model = build(name)
    x = torch.randn(2, 3, 64, 64)
    folded = fold_batchnorm(model, x)
    remaining = sum(isinstance(m, _BatchNorm) for m in folded.modules())
    total = sum(isinstance(m, _BatchNorm) for m in model.modules())
    assert len(folded.folded_pairs) == total - remaining > 0
    if name not in PRE_ACTIVATION:
        assert remaining <= total // 4, (remaining, total)
    y = torch.randn(1, 3, 96, 80)  # another input than the one used to find the pairs
    with torch.no_grad():
        assert_features_close(folded(y), model(y), rtol=1e-4)


@pytest.mark.parametrize('channels_last', [None, True])
@pytest.mark.parametrize('name', FAMILIES)
def test_optimize_for_inference_is_exact_and_hands_out_nchw(name, channels_last):
    model = build(name)
    deployed = optimize_for_inference(model, torch.randn(2, 3, 64, 64), channels_last)
    assert type(deployed) is type(model) and deployed.out_channels == model.out_channels
    assert len(deployed.folded_pairs) > 0
    # by default only the involution families (aggregation in NCHW) stay contiguous
    expect_cl = channels_last or (channels_last is None and not name.startswith(('RedNet',
                                                                                  'DCDC')))
    assert deployed.deploy_memory_format == ('channels_last' if expect_cl else 'contiguous')
    assert next(p for p in deployed.parameters() if p.dim() == 4).is_contiguous(
        memory_format=torch.channels_last) == expect_cl
    y = torch.randn(1, 3, 96, 80)
    with torch.no_grad():
        got, expected = deployed(y), model(y)
    assert all(g.is_contiguous() for g in got)  # NCHW for callers that index memory (mmcv ops)
    assert_features_close(got, expected, rtol=1e-4)


def test_optimize_for_inference_refuses_a_non_bool_layout():
    with pytest.raises(TypeError, match=r'channels_last must be True, False or None .*got .yes'):
        optimize_for_inference(build('ResNet-18'), torch.randn(1, 3, 32, 32), channels_last='yes')
    with pytest.raises(TypeError, match=r'compile must be True or False; got .inductor'):
        optimize_for_inference(build('ResNet-18'), torch.randn(1, 3, 32, 32), compile='inductor')


# Inductor with frozen weights: a convolutional family in channels_last and an involution one
# in NCHW (its aggregation is a custom operator that Inductor calls, not compiles)
@pytest.mark.slow
@pytest.mark.parametrize('name', ['ResNet-18', 'RedNet-26'])
def test_optimize_for_inference_compiled_is_exact(name):
    model = build(name)
    x = torch.randn(2, 3, 64, 64)
    deployed = optimize_for_inference(model, x, compile=True)
    assert deployed.deploy_compiled and type(deployed) is type(model)
    assert not any(p.requires_grad for p in deployed.parameters())
    with torch.no_grad():
        expected = model(x)
    # after the eval() a test loop calls, under no_grad as it was checked: no second compile
    deployed.eval()
    with torch.no_grad(), torch.compiler.set_stance('fail_on_recompile'):
        got = deployed(x)
    assert all(g.is_contiguous() for g in got)
    assert_features_close(got, expected, rtol=1e-4)
    if name == 'ResNet-18':  # another shape: compiled anew (static shapes), still exact
        y = torch.randn(1, 3, 96, 80)
        with torch.no_grad():
            assert_features_close(deployed(y), model(y), rtol=1e-4)


@pytest.mark.parametrize('kernel,stride,padding,ceil_mode', [(3, 2, 1, False), (2, 2, 0, False),
                                                            (3, 2, 1, True)])
def test_max_pool_equals_torch_in_inference_and_training(kernel, stride, padding, ceil_mode):
    ours, ref = (cls(kernel, stride, padding, ceil_mode=ceil_mode)
                 for cls in (MaxPool2d, torch.nn.MaxPool2d))
    x = torch.relu(torch.randn(2, 8, 15, 14))  # ReLU zeros: ties inside windows
    with torch.no_grad():
        out = ours(x)
        assert out.is_contiguous() and torch.equal(out, ref(x))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.equal(ours(x_cl), ref(x_cl))
    grads = []
    for pool in (ours, ref):
        xi = x.clone().requires_grad_()
        (pool(xi) * torch.arange(1., 1 + out.numel()).view_as(out)).sum().backward()
        grads.append(xi.grad)
    assert torch.equal(*grads)


@pytest.mark.parametrize('name', FAMILIES)
def test_channels_last_input(name):
    model = build(name)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    assert_features_close(out, ref, rtol=1e-4)


@pytest.mark.slow  # the capability matrix's compile column (fullgraph) is the fast check
@pytest.mark.parametrize('name', FAMILIES)
def test_dynamo_captures_whole_graph(name):
    explanation = torch._dynamo.explain(build(name))(torch.randn(1, 3, 64, 64))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert len(explanation.graphs) == 1


# one per kind of block: bottleneck, split attention, dense/harmonic concat, involution
@pytest.mark.slow
@pytest.mark.parametrize('name', ['ResNet-18', 'ResNeSt-50', 'HarDNet-68', 'RedNet-26'])
def test_torch_compile_matches_eager(name):
    model = build(name)
    x = torch.randn(2, 3, 64, 64)  # 2: split attention's norm sees one value per image
    compiled = torch.compile(model, backend='aot_eager')
    with torch.no_grad():
        assert_features_close(compiled(x), model(x), rtol=1e-5)
    # training graph too: the involution is a custom op with its own backward formula
    model.train()
    grads = []
    for fn in (model, compiled):
        model.zero_grad()
        sum(o.mean() for o in fn(x.clone().requires_grad_())).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    assert_features_close(grads[1], grads[0], rtol=1e-4)


def test_every_family_of_the_model_table_is_covered():
    """A family added to the table (mmresfamily/zoo.py) must join these cases."""
    from mmresfamily import zoo
    assert {cfg['type'] for cfg in FAMILIES.values()} == set(zoo.families())
