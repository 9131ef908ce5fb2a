from .builders import build_stage_plugins, forward_plugins, make_plugin_layers, resolve_dcn
from .split_attention import SplitAttentionConv2d

__all__ = ['build_stage_plugins', 'forward_plugins', 'make_plugin_layers', 'resolve_dcn',
           'SplitAttentionConv2d']
