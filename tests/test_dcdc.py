"""DCDC: each branch against a direct einsum reference over explicitly gathered patches, the
generators written out, the sum of the two branches, shapes at stride/dilation, configs."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmresfamily.models.layers import DCDC, GlobalKernelConv
from mmresfamily.testing import randomize_, relative_max_diff


def gathered_patches(x, k, s, d):
    """(N, C, k*k, H_out, W_out): patches[n, c, a*k + b, i, j] = x[n, c, i*s + a*d - p,
    j*s + b*d - p], zero outside the image, gathered with explicit index lists."""
    batch, channels, height, width = x.shape
    pad = d * (k - 1) // 2
    out_h = (height + 2 * pad - d * (k - 1) - 1) // s + 1
    out_w = (width + 2 * pad - d * (k - 1) - 1) // s + 1
    padded = torch.zeros(batch, channels, height + 2 * pad, width + 2 * pad, dtype=x.dtype)
    padded[:, :, pad:pad + height, pad:pad + width] = x
    patches = torch.empty(batch, channels, k * k, out_h, out_w, dtype=x.dtype)
    for a in range(k):
        rows = torch.arange(out_h) * s + a * d
        for b in range(k):
            cols = torch.arange(out_w) * s + b * d
            patches[:, :, a * k + b] = padded[:, :, rows][:, :, :, cols]
    return patches


CASES = [(3, 1, 1, 8), (3, 2, 1, 7), (3, 1, 2, 8), (5, 2, 1, 9)]  # (k, stride, dilation, size)
IDS = [f'k{k}s{s}d{d}-{n}' for k, s, d, n in CASES]


@torch.no_grad()
@pytest.mark.parametrize('k,s,d,size', CASES, ids=IDS)
def test_local_branch_is_location_specific_group_shared(k, s, d, size):
    dcdc = randomize_(DCDC(32, k, s, d, group_channels=8)).eval()
    x = torch.randn(3, 32, size, size, dtype=torch.float64)
    dcdc.double()
    kernels = dcdc.local_branch.generate_kernels(x)  # (N, groups*k*k, H_out, W_out)
    patches = gathered_patches(x, k, s, d)
    n, _, _, h, w = patches.shape
    ref = torch.einsum('ngkhw,ngckhw->ngchw', kernels.view(n, 4, k * k, h, w),
                       patches.view(n, 4, 8, k * k, h, w)).reshape(n, 32, h, w)
    torch.testing.assert_close(dcdc.local_branch(x), ref)
    # the kernel differs from location to location (it is not a convolution)
    assert not torch.allclose(kernels[..., 0, 0], kernels[..., -1, -1])


@torch.no_grad()
@pytest.mark.parametrize('global_group_channels', [1, 4])
@pytest.mark.parametrize('k,s,d,size', CASES, ids=IDS)
def test_global_branch_is_one_kernel_per_sample(k, s, d, size, global_group_channels):
    branch = randomize_(GlobalKernelConv(32, k, s, d, global_group_channels)).double().eval()
    x = torch.randn(3, 32, size, size, dtype=torch.float64)
    # generator written out: global mean -> 1x1 + bias -> ReLU -> 1x1 + bias
    w1, b1 = branch.fc1.conv.weight[:, :, 0, 0], branch.fc1.conv.bias
    w2, b2 = branch.fc2.conv.weight[:, :, 0, 0], branch.fc2.conv.bias
    kernels = (x.mean(dim=(2, 3)) @ w1.T + b1).relu() @ w2.T + b2  # (N, groups*k*k)
    groups = 32 // global_group_channels
    torch.testing.assert_close(branch.generate_kernels(x).reshape(3, -1), kernels)
    patches = gathered_patches(x, k, s, d)
    n, _, _, h, w = patches.shape
    ref = torch.einsum('ngk,ngckhw->ngchw', kernels.view(n, groups, k * k),
                       patches.view(n, groups, global_group_channels, k * k, h, w))
    torch.testing.assert_close(branch(x), ref.reshape(n, 32, h, w))
    # samples get their own kernels, and one sample's output ignores the others
    assert not torch.allclose(kernels[0], kernels[1])
    x_other = x.clone()
    x_other[1:] = torch.randn_like(x[1:])
    torch.testing.assert_close(branch(x_other)[0], branch(x)[0])


@torch.no_grad()
@pytest.mark.parametrize('k,s,d,size', CASES, ids=IDS)
def test_dcdc_sums_the_two_branches(k, s, d, size):
    dcdc = randomize_(DCDC(32, k, s, d)).eval()
    x = torch.randn(2, 32, size, size)
    out = dcdc(x)
    expected = -(-size // s)  # both branches keep "same" size, ceil at stride > 1
    assert out.shape == (2, 32, expected, expected)
    assert relative_max_diff(out, dcdc.local_branch(x) + dcdc.global_branch(x)) <= 1e-6
    # neither branch is negligible, so dropping one would be seen
    for branch in (dcdc.local_branch, dcdc.global_branch):
        assert branch(x).abs().mean() > 0.05 * out.abs().mean()


def test_gradients_reach_both_generators_and_configs_reach_inside():
    dcdc = DCDC(32, norm_cfg=dict(type='GN', num_groups=4), act_cfg=dict(type='GELU'),
                conv_cfg=dict(type='ConvWS'))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in dcdc.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in dcdc.modules())
    assert sum(isinstance(m, nn.GELU) for m in dcdc.modules()) == 2  # one per generator
    convs = [m for m in dcdc.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(type(m).__name__ == 'ConvWS2d' for m in convs)
    dcdc(torch.randn(2, 32, 6, 6)).square().mean().backward()
    for name, p in dcdc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_global_branch_matches_per_sample_conv_in_half_batches():
    """Folding the batch into groups must not depend on the batch size."""
    branch = randomize_(GlobalKernelConv(16, 3, 2)).eval()
    x = torch.randn(4, 16, 9, 9)
    with torch.no_grad():
        whole = branch(x)
        halves = torch.cat([branch(x[:2]), branch(x[2:])])
        singles = torch.cat([F.conv2d(x[i:i + 1], branch.generate_kernels(x[i:i + 1]).view(
            16, 1, 3, 3), stride=2, padding=1, groups=16) for i in range(4)])
    assert relative_max_diff(whole, halves) <= 1e-6
    assert relative_max_diff(whole, singles) <= 1e-5


@pytest.mark.parametrize('kwargs,match', [
    (dict(channels=32, kernel_size=2), 'kernel_size must be a positive odd int'),
    (dict(channels=32, global_group_channels=3),
     r'channels \(32\) must be a multiple of global_group_channels \(3\)'),
    (dict(channels=24, group_channels=16),
     r'channels \(24\) must be a multiple of group_channels \(16\)'),
])
def test_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DCDC(**kwargs)
