"""Involution (Li et al., CVPR 2021): a K x K kernel generated at every location from the input
itself and shared by the channels of a group -- the inverse of convolution's sharing pattern.

Differences from the official code (d-li14/involution), all in favour of use inside toolboxes:

* `norm_cfg` / `act_cfg` / `conv_cfg` reach the kernel generator (the official one hard-codes BN).
* The aggregation is a shift-and-accumulate loop over the K*K kernel offsets
  (`involution_shift_add`): each step multiplies one contiguous span of the padded input, split
  into its stride x stride phases, by the per-location weight of that offset, and the backward
  loops the same way. Peak extra memory is
  O(C*H*W), where the unfold formula (`involution_unfold`, the official CPU path) materialises a
  K^2*C*H*W patch tensor. Plain PyTorch ops on any device, so no CuPy kernel is needed; both
  paths give the same result (tests/test_involution.py) and tools/benchmark.py compares them.
* Strided kernels come from a ceil-mode average pool, so odd input sizes work (the official pool
  floors and then disagrees with the unfold's output size); on even sizes both are identical.
* `dilation` spaces the kernel taps (D8 segmentation); the official block ignores dilation.

Keys (`conv1.conv`, `conv1.bn`, `conv2.conv`) follow the official module.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from ...errors import InvalidArgumentError, InvalidInputError, check_int, is_int
from .capture import is_capturing_graph
from .norm import conv_module


def _output_size(size, kernel_size, stride, dilation):
    padding = dilation * (kernel_size - 1) // 2
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _check_weight(x, weight, kernel_size, stride, dilation):
    batch, channels, height, width = x.shape
    out_hw = (_output_size(height, kernel_size, stride, dilation),
              _output_size(width, kernel_size, stride, dilation))
    taps = kernel_size**2
    if (weight.dim() != 4 or weight.shape[0] != batch or weight.shape[1] % taps
            or tuple(weight.shape[2:]) != out_hw):
        raise InvalidInputError(f'involution weight must have shape (N, groups*{taps}, '
                                f'{out_hw[0]}, {out_hw[1]}) for input {tuple(x.shape)}; got '
                                f'{tuple(weight.shape)}')
    groups = weight.shape[1] // taps
    if channels % groups:
        raise InvalidInputError(f'{channels} input channels cannot be split into {groups} groups')
    return groups, out_hw


def involution_unfold(x, weight, kernel_size, stride=1, dilation=1):
    """The defining formula (official CPU path), materialising every K x K patch.

    out[n, g*Cg + c, i, j] = sum_k weight[n, g*K^2 + k, i, j] * x_pad[n, g*Cg + c, tap_k(i, j)]
    """
    groups, (out_h, out_w) = _check_weight(x, weight, kernel_size, stride, dilation)
    batch, channels = x.shape[:2]
    taps = kernel_size**2
    padding = dilation * (kernel_size - 1) // 2
    patches = F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    patches = patches.view(batch, groups, channels // groups, taps, out_h, out_w)
    weight = weight.view(batch, groups, 1, taps, out_h, out_w)
    return (weight * patches).sum(dim=3).view(batch, channels, out_h, out_w)


# ---- the aggregation: taps as flat offsets on phase grids -------------------------------------
# Split the padded input into its stride x stride phases (rows a::stride, columns b::stride).
# The tap (i, j) of output (h, w) reads padded position (h*s + i*d, w*s + j*d), which lies in
# phase ((i*d) % s, (j*d) % s) at (h + i*d // s, w + j*d // s): a stride-1 read. Flattening
# each phase (row width Wq) puts that read at one flat offset per tap for every output, so with
# the output computed on the phase grid (Wq - W_out unused columns per row, their kernels zero)
# each step is one contiguous 1-D multiply-add of length H_out * Wq. Strided 2-D views instead
# gave W_out-long inner loops with a stride: at stride 2 they were the slowest part of RedNet.
def _ceil_div(a, b):
    # not -(-a // b): traced for the legacy ONNX exporter, a negative floor division became a
    # truncating Div (one row short)
    return (a + b - 1) // b


def _phase_geometry(height, width, kernel_size, stride, dilation):
    """padding, (out_h, out_w), (rows, cols) of one phase, output length, [(phase, offset)]."""
    padding = dilation * (kernel_size - 1) // 2
    out_h = _output_size(height, kernel_size, stride, dilation)
    out_w = _output_size(width, kernel_size, stride, dilation)
    cols = _ceil_div(width + 2 * padding, stride)
    taps = []
    for k in range(kernel_size**2):
        row_shift, row_phase = divmod((k // kernel_size) * dilation, stride)
        col_shift, col_phase = divmod((k % kernel_size) * dilation, stride)
        taps.append((row_phase * stride + col_phase, row_shift * cols + col_shift))
    length = out_h * cols
    # enough rows for the padded input and for the last tap's span (zero rows below the image).
    # The larger of the two is known from the kernel alone (no comparison of sizes, which an
    # exported graph would have to guard): with a shift of s = (K-1)*d // stride rows and
    # columns, the last span ends on row out_h + s (+1 for its column shift) and the padded
    # input on row ceil((H + (K-1)*d) / stride) <= ceil(H / stride) + s + 1 = that; without
    # one (s = 0) the padded input is the longer.
    shift = (kernel_size - 1) * dilation // stride
    rows = out_h + shift + 1 if shift else _ceil_div(height + 2 * padding, stride)
    return padding, (out_h, out_w), (rows, cols), length, taps


def _phase_input(x, groups, geometry, stride):
    """(N, G, Cg, stride^2, rows * cols): the zero-padded input split into its phases."""
    padding, _, (rows, cols), _, _ = geometry
    batch, channels, height, width = x.shape
    x = F.pad(x, (padding, cols * stride - width - padding, padding,
                  rows * stride - height - padding))
    if stride > 1:
        x = x.view(batch, channels, rows, stride, cols, stride).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(batch, groups, channels // groups, stride * stride, rows * cols)


def _on_phase_grid(t, cols):
    """(..., H_out, W_out) -> (..., H_out * cols): zero columns appended to every row."""
    return F.pad(t, (0, cols - t.shape[-1])).flatten(-2)


def _shift_add(x, weight, kernel_size, stride, dilation, groups):
    """Forward with plain ops: each term is a contiguous span of the phase-split input (no
    copy) times a broadcast kernel slice, added in place; the largest temporary is the input
    split into phases."""
    batch, channels, height, width = x.shape
    geometry = _phase_geometry(height, width, kernel_size, stride, dilation)
    _, (out_h, out_w), (_, cols), length, taps = geometry
    phases = _phase_input(x, groups, geometry, stride)
    kernels = _on_phase_grid(weight, cols).view(batch, groups, 1, kernel_size**2, length)
    out = None
    for k, (phase, offset) in enumerate(taps):
        tap = phases[:, :, :, phase, offset:offset + length]
        if out is None:
            out = tap * kernels[:, :, :, k]
        else:
            out.addcmul_(tap, kernels[:, :, :, k])
    return out.view(batch, channels, out_h, cols)[..., :out_w].contiguous()


def _shift_add_backward(grad_out, x, weight, kernel_size, stride, dilation, groups, needs):
    batch, channels, height, width = x.shape
    geometry = _phase_geometry(height, width, kernel_size, stride, dilation)
    padding, (out_h, out_w), (rows, cols), length, taps = geometry
    # zero gradient on the unused columns, so they add nothing to the input's gradient
    grad_flat = _on_phase_grid(grad_out, cols).view(batch, groups, channels // groups, length)
    grad_x = grad_weight = None
    if needs[0]:
        kernels = _on_phase_grid(weight, cols).view(batch, groups, 1, kernel_size**2, length)
        grad_phases = x.new_zeros(batch, groups, channels // groups, stride * stride,
                                  rows * cols)
        for k, (phase, offset) in enumerate(taps):
            grad_phases[:, :, :, phase, offset:offset + length].addcmul_(grad_flat,
                                                                         kernels[:, :, :, k])
        grad_pad = grad_phases.view(batch, channels, stride, stride, rows, cols)
        grad_pad = grad_pad.permute(0, 1, 4, 2, 5, 3).reshape(batch, channels, rows * stride,
                                                               cols * stride)
        grad_x = grad_pad[..., padding:padding + height, padding:padding + width]
    if needs[1]:
        phases = _phase_input(x, groups, geometry, stride)
        grad_weight = weight.new_empty(batch, groups, kernel_size**2, length)
        for k, (phase, offset) in enumerate(taps):
            # a copy, not sum(out=...): dynamo cannot trace out= into a strided slice
            grad_weight[:, :, k] = (grad_flat * phases[:, :, :, phase,
                                                       offset:offset + length]).sum(2)
        grad_weight = grad_weight.view(batch, -1, out_h, cols)[..., :out_w]
    return grad_x, grad_weight


# A custom operator, not an autograd.Function: dynamo still captures it inside the model's one
# graph, but Inductor calls it as an opaque kernel instead of generating code for the 49-step
# accumulation -- its generated loop ran 3-5x slower than these ops and compiled RedNet-50 for
# over ten minutes (Involution(128) at 56 px: 600 ms compiled vs 120-170 ms eager).
@torch.library.custom_op('mmresfamily::involution_shift_add', mutates_args=())
def _shift_add_op(x: torch.Tensor, weight: torch.Tensor, kernel_size: int, stride: int,
                  dilation: int, groups: int) -> torch.Tensor:
    return _shift_add(x, weight, kernel_size, stride, dilation, groups)


@_shift_add_op.register_fake
def _(x, weight, kernel_size, stride, dilation, groups):
    return x.new_empty(x.shape[:2] + weight.shape[2:])


def _save_for_backward(ctx, inputs, output):
    x, weight, *config = inputs
    ctx.save_for_backward(x, weight)
    ctx.config = config


def _backward(ctx, grad_out):
    """Loops over the taps too: autograd through 49 views would allocate a padded-input-sized
    gradient per tap; here the input gradient accumulates in one buffer and each weight
    gradient is one reduction."""
    x, weight = ctx.saved_tensors
    grad_x, grad_weight = _shift_add_backward(grad_out, x, weight, *ctx.config,
                                              ctx.needs_input_grad[:2])
    return grad_x, grad_weight, None, None, None, None


_shift_add_op.register_autograd(_backward, setup_context=_save_for_backward)


def involution_shift_add(x, weight, kernel_size, stride=1, dilation=1):
    """Same result as `involution_unfold` with O(C*H*W) extra memory, forward and backward.

    Captured graphs (jit trace, torch.export and ONNX, FLOP counters) get the plain-op forward;
    it is also the path to use if double backward is ever needed.
    """
    weight = weight.to(x.dtype)  # autocast may hand the generated kernels in another precision
    if is_capturing_graph(x):
        # plain ops, no shape check (an exported graph would have to guard it): the graph then
        # runs where the custom operator is not registered, and ONNX has its ops
        return _shift_add(x, weight, kernel_size, stride, dilation,
                          weight.shape[1] // kernel_size**2)
    groups, _ = _check_weight(x, weight, kernel_size, stride, dilation)
    return _shift_add_op(x, weight, kernel_size, stride, dilation, groups)


# torch.fx.symbolic_trace records the call as one node (its geometry is Python on sizes)
torch.fx.wrap('involution_shift_add')


def check_dynamic_kernel_args(channels, kernel_size, group_channels, reduction_ratio,
                              group_name='group_channels'):
    """The arguments of a kernel-generating operator (involution, DCDC's branches)."""
    check_int('kernel_size', kernel_size)
    if kernel_size % 2 == 0:
        raise InvalidArgumentError(f'kernel_size must be a positive odd int; got {kernel_size!r}')
    if channels % check_int(group_name, group_channels):
        raise InvalidArgumentError(f'channels ({channels}) must be a multiple of {group_name} '
                                   f'({group_channels})')
    if check_int('reduction_ratio', reduction_ratio) > channels:
        raise InvalidArgumentError(f'reduction_ratio must be in [1, channels={channels}]; '
                                   f'got {reduction_ratio!r}')


class Involution(nn.Module):
    """Involution: kernel generator (1x1 reduce -> norm -> act -> 1x1 to K^2*groups) on the input
    (average-pooled by `stride`), then the per-location aggregation.

    Args:
        channels: input = output channels; a multiple of `group_channels`.
        kernel_size: odd K of the generated kernels.
        stride, dilation: of the aggregation (padding keeps the "same" size at stride 1).
        group_channels: channels sharing one generated kernel (groups = channels / this).
        reduction_ratio: channel reduction in the generator.
        conv_cfg, norm_cfg, act_cfg: of the generator's layers.
    """
    # the aggregation reads flat spans of contiguous NCHW memory: deploy keeps models with it
    # out of channels_last (see mmresfamily.deploy)
    computes_in_nchw = True

    def __init__(self, channels, kernel_size=7, stride=1, dilation=1, group_channels=16,
                 reduction_ratio=4, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU')):
        super().__init__()
        check_dynamic_kernel_args(channels, kernel_size, group_channels, reduction_ratio)
        self.channels, self.kernel_size = channels, kernel_size
        if not (is_int(stride) and is_int(dilation) and stride >= 1 and dilation >= 1):
            raise InvalidArgumentError(f'stride and dilation must be >= 1 (ints); got {stride!r}, '
                                       f'{dilation!r}')
        self.stride, self.dilation = stride, dilation
        self.group_channels = group_channels
        self.groups = channels // group_channels
        self.conv1 = conv_module(channels, channels // reduction_ratio, 1, norm_cfg,
                                 conv_cfg=conv_cfg, act_cfg=act_cfg)
        # no norm/act: the generated kernel is a plain linear map (bias on, as in the official)
        self.conv2 = ConvModule(channels // reduction_ratio, kernel_size**2 * self.groups, 1,
                                conv_cfg=conv_cfg, norm_cfg=None, act_cfg=None)
        # kernels for a strided output come from the matching pooled positions
        self.avgpool = (nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else
                        nn.Identity())

    def generate_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """(N, groups*K^2, H_out, W_out) kernels, group-major as in the official code."""
        return self.conv2(self.conv1(self.avgpool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return involution_shift_add(x, self.generate_kernels(x), self.kernel_size, self.stride,
                                    self.dilation)

    def extra_repr(self):
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, dilation={self.dilation}, groups={self.groups}')
