from .builders import (
                       build_stage_plugins,
                       check_plugins,
                       forward_plugins,
                       make_plugin_layers,
                       resolve_dcn,
)
from .dcdc import DCDC, GlobalKernelConv
from .deform_conv import TorchDeformConv2d, TorchModulatedDeformConv2d
from .highway import HighwayGate
from .involution import Involution, involution_shift_add, involution_unfold
from .norm import FallbackGroupNorm, build_norm
from .pooling import MaxPool2d
from .split_attention import SplitAttentionConv2d

__all__ = ['build_stage_plugins', 'check_plugins', 'forward_plugins', 'make_plugin_layers',
           'resolve_dcn', 'HighwayGate', 'SplitAttentionConv2d']
__all__ += ['DCDC', 'GlobalKernelConv', 'Involution', 'involution_shift_add', 'involution_unfold',
            'MaxPool2d', 'build_norm', 'FallbackGroupNorm']
__all__ += ['TorchDeformConv2d', 'TorchModulatedDeformConv2d']
