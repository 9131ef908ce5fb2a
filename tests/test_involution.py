"""Involution: the memory-light shift-and-add path equals the defining (unfold) formula, forward
and backward; the module's kernel generator, strides, odd sizes and configs behave."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmresfamily.models.layers import Involution, involution_shift_add, involution_unfold
from mmresfamily.testing import randomize_, relative_max_diff

# (kernel_size, stride, dilation, height, width)
CASES = [(7, 1, 1, 9, 9), (7, 2, 1, 10, 10), (7, 2, 1, 9, 7), (3, 1, 2, 8, 8), (3, 2, 1, 7, 8),
         (5, 3, 1, 11, 10), (3, 1, 1, 5, 5), (1, 1, 1, 4, 4)]
IDS = [f'k{k}s{s}d{d}-{h}x{w}' for k, s, d, h, w in CASES]


def out_size(size, k, s, d):
    return (size + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1


def random_inputs(k, s, d, h, w, channels=8, groups=2, batch=2, dtype=torch.float32):
    x = torch.randn(batch, channels, h, w, dtype=dtype)
    weight = torch.randn(batch, groups * k * k, out_size(h, k, s, d), out_size(w, k, s, d),
                         dtype=dtype)
    return x, weight


def involution_by_definition(x, weight, k, s, d):
    """out[n, c, i, j] = sum over taps (a, b) inside the image of
    weight[n, group(c)*k*k + a*k + b, i, j] * x[n, c, i*s + a*d - pad, j*s + b*d - pad]."""
    batch, channels, height, width = x.shape
    out_h, out_w = weight.shape[-2:]
    groups = weight.shape[1] // (k * k)
    pad = d * (k - 1) // 2
    out = torch.zeros(batch, channels, out_h, out_w, dtype=x.dtype)
    for c in range(channels):
        g = c // (channels // groups)
        for i in range(out_h):
            for j in range(out_w):
                for a in range(k):
                    for b in range(k):
                        row, col = i * s + a * d - pad, j * s + b * d - pad
                        if 0 <= row < height and 0 <= col < width:
                            out[:, c, i, j] += (weight[:, g * k * k + a * k + b, i, j] *
                                                x[:, c, row, col])
    return out


@pytest.mark.parametrize('k,s,d,h,w', CASES[:5], ids=IDS[:5])
def test_unfold_formula_is_the_definition(k, s, d, h, w):
    x, weight = random_inputs(k, s, d, h, w, channels=4, batch=1, dtype=torch.float64)
    torch.testing.assert_close(involution_unfold(x, weight, k, s, d),
                               involution_by_definition(x, weight, k, s, d))


@pytest.mark.parametrize('k,s,d,h,w', CASES, ids=IDS)
def test_shift_add_equals_unfold_forward_and_backward(k, s, d, h, w):
    x, weight = random_inputs(k, s, d, h, w, channels=32, groups=2)
    results = []
    for fn in (involution_unfold, involution_shift_add):
        xi, wi = x.clone().requires_grad_(), weight.clone().requires_grad_()
        out = fn(xi, wi, k, s, d)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), xi.grad, wi.grad))
    for name, ref, ours in zip(('output', 'grad x', 'grad weight'), *results):
        assert ours.shape == ref.shape
        assert relative_max_diff(ours, ref) <= 1e-5, name


def test_shift_add_gradcheck():
    for k, s, d, h, w in [(3, 2, 1, 7, 6), (3, 1, 2, 5, 5)]:
        x, weight = random_inputs(k, s, d, h, w, channels=4, batch=2, dtype=torch.float64)
        x.requires_grad_()
        weight.requires_grad_()
        assert torch.autograd.gradcheck(
            lambda a, b, k=k, s=s, d=d: involution_shift_add(a, b, k, s, d), (x, weight))


def test_traced_graph_uses_plain_ops_with_same_result():
    """FLOP counters and jit see the plain-op path; it must agree with the eager one."""
    module = randomize_(Involution(32, 7, stride=2)).eval()
    x = torch.randn(2, 32, 10, 10)
    traced = torch.jit.trace(module, (x, ))
    assert 'PythonOp' not in str(traced.graph)
    x2 = torch.randn(2, 32, 10, 10)
    assert relative_max_diff(traced(x2), module(x2)) <= 1e-6


@torch.no_grad()
@pytest.mark.parametrize('stride,size', [(1, 8), (2, 8), (2, 7)])
def test_module_generates_kernels_from_pooled_input(stride, size):
    module = randomize_(Involution(32, 3, stride=stride, reduction_ratio=4)).eval()
    x = torch.randn(2, 32, size, size)
    # generator written out: ceil-mode average pool, 1x1 -> BN (eval) -> ReLU -> 1x1 + bias
    pooled = F.avg_pool2d(x, stride, stride, ceil_mode=True) if stride > 1 else x
    bn = module.conv1.bn
    hidden = torch.einsum('oc,nchw->nohw', module.conv1.conv.weight[:, :, 0, 0], pooled)
    hidden = (hidden - bn.running_mean[:, None, None]) / (
        bn.running_var[:, None, None] + bn.eps).sqrt() * bn.weight[:, None, None] + \
        bn.bias[:, None, None]
    kernels = torch.einsum('oc,nchw->nohw', module.conv2.conv.weight[:, :, 0, 0],
                           hidden.relu()) + module.conv2.conv.bias[:, None, None]
    expected_hw = -(-size // stride)  # ceil: odd sizes work at stride 2
    assert kernels.shape == (2, 2 * 9, expected_hw, expected_hw)
    assert relative_max_diff(module.generate_kernels(x), kernels) <= 1e-5
    out = module(x)
    assert out.shape == (2, 32, expected_hw, expected_hw)
    assert relative_max_diff(out, involution_unfold(x, kernels, 3, stride)) <= 1e-5


def test_kernels_are_shared_within_a_group_only():
    module = randomize_(Involution(32, 3, group_channels=16)).eval()
    x = torch.randn(1, 32, 6, 6)
    with torch.no_grad():
        kernels = module.generate_kernels(x)
        kernels[:, 9:] = 0  # silence group 1: only channels 0..15 see a kernel
        out = involution_shift_add(x, kernels, 3)
    assert out[:, :16].abs().sum() > 0 and out[:, 16:].abs().sum() == 0


def test_norm_and_act_configs_reach_the_generator():
    module = Involution(32, 7, norm_cfg=dict(type='GN', num_groups=4),
                        act_cfg=dict(type='GELU'))
    assert any(isinstance(m, nn.GroupNorm) for m in module.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    assert any(isinstance(m, nn.GELU) for m in module.modules())
    module(torch.randn(1, 32, 5, 5)).sum().backward()
    assert all(p.grad is not None for p in module.parameters())


@pytest.mark.parametrize('kwargs,match', [
    (dict(channels=32, kernel_size=4), 'kernel_size must be a positive odd int'),
    (dict(channels=24, group_channels=16), r'channels \(24\) must be a multiple of '
     r'group_channels \(16\)'),
    (dict(channels=32, reduction_ratio=64), 'reduction_ratio must be in'),
    (dict(channels=32, stride=0), 'stride and dilation must be >= 1'),
])
def test_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Involution(**kwargs)


def test_weight_shape_is_checked():
    x = torch.randn(1, 32, 8, 8)
    with pytest.raises(ValueError, match=r'involution weight must have shape \(N, groups\*49'):
        involution_shift_add(x, torch.randn(1, 2 * 49, 7, 7), 7)
