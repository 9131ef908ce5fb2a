from .builders import build_stage_plugins, forward_plugins, make_plugin_layers, resolve_dcn
from .highway import HighwayGate
from .split_attention import SplitAttentionConv2d

__all__ = ['build_stage_plugins', 'forward_plugins', 'make_plugin_layers', 'resolve_dcn', 'HighwayGate',
           'SplitAttentionConv2d']
