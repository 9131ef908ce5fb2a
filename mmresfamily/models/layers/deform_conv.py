"""Deformable convolutions computed by torchvision's registered operator.

mmcv's `DCN` / `DCNv2` layers call a pybind kernel: not a torch operator, so torch.export,
torch.compile, FX and the ONNX exporters cannot see through it, and its CPU kernel reads NCHW
memory whatever the input's layout (channels_last input gave wrong features, silently).

The layers here subclass mmcv's, so everything else stays as it was: `isinstance` checks, the
parameter names (`weight`, `bias`, `conv_offset.*`: mmdet checkpoints load), the upgrade of old
`*_offset` keys, the zero-initialised offsets. Only the computation moves to
`torchvision.ops.deform_conv2d`, which samples the same way (offsets `[y0, x0, y1, x1, ...]` per
deformable group, bilinear with zeros outside the image, the modulation mask multiplying each
sample): the same forward and gradients as mmcv's kernel (tests/test_deform_conv.py), for any
memory format, and a registered operator that exports (ONNX `DeformConv`, opset 19).

`resolve_dcn` (builders.py) swaps mmcv's two classes for these when a `dcn` config names them;
every mmcv option has its counterpart, so no config keeps mmcv's kernel.
"""
import torch
import torch.fx
from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack
from torchvision.ops import deform_conv2d


class TorchDeformConv2d(DeformConv2dPack):
    """mmcv's `DCN` (DeformConv2dPack), computed by `torchvision.ops.deform_conv2d`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.conv_offset(x)
        x = x.type_as(offset)  # as mmcv: under autocast the offsets set the precision
        return deform_conv2d(x, offset, self.weight.type_as(x), None, self.stride,
                             self.padding, self.dilation)


class TorchModulatedDeformConv2d(ModulatedDeformConv2dPack):
    """mmcv's `DCNv2` (ModulatedDeformConv2dPack), computed by `torchvision.ops.deform_conv2d`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # mmcv's layout: two thirds offsets, one third mask logits
        offset_a, offset_b, mask = torch.chunk(self.conv_offset(x), 3, dim=1)
        offset = torch.cat((offset_a, offset_b), dim=1)
        x = x.type_as(offset)
        bias = None if self.bias is None else self.bias.type_as(x)
        return deform_conv2d(x, offset, self.weight.type_as(x), bias, self.stride, self.padding,
                             self.dilation, torch.sigmoid(mask))


# torch.fx.symbolic_trace records the operator call as one node (its argument checks are Python)
torch.fx.wrap('deform_conv2d')

# mmcv's class -> ours (exact classes: a subclass registered by someone else keeps its forward)
TORCH_OP_LAYERS = {DeformConv2dPack: TorchDeformConv2d,
                   ModulatedDeformConv2dPack: TorchModulatedDeformConv2d}


def torch_op_layer(cls):
    """The deformable conv class to build for a `dcn` config that resolved to `cls`."""
    return TORCH_OP_LAYERS.get(cls, cls)
