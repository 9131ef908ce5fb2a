"""DenseNet-BC (Huang et al. 2017, "Densely Connected Convolutional Networks").

Each dense layer sees the concatenation of every earlier output of its block (norm-relu-1x1 conv
to `bn_size * growth_rate` channels, norm-relu-3x3 conv to `growth_rate`); transitions
(norm-relu-1x1 conv-2x2 avg pool) compress the channels by `compression` and halve the
resolution. Stage i is [transition i-1 +] dense block i, so its output is the block's
concatenation before the next transition (the dense-prediction tap at stride 4/8/16/32); the last
stage ends with the final norm + relu. For segmentation, a stage with stride 1 keeps its
transition's 1x1 conv but not its pooling, and `dilations` widen its dense layers' 3x3 convs
(`output_stride=8`: the d8 features of mmseg's dilated ResNets). Key names follow
torchvision/timm inside blocks (`denselayer1.norm1`, `transition.conv`), so conversion is a
rename of the containers.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer

from ...errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    check_int,
    check_number,
    check_stage_ints,
)
from ...registry import MODELS
from ..layers.builders import build_conv3x3
from ..layers.capture import checkpoints
from ..layers.norm import norm_layer
from ..layers.pooling import MaxPool2d
from .base import BaseBackbone
from .stages import resolve_alias, resolve_strides, stage_reductions


class DenseLayer(nn.Module):
    """cat(inputs) -> norm1-relu-conv1(1x1) -> norm2-relu-conv2(3x3) [-> dropout]."""

    def __init__(self, in_channels, growth_rate, bn_size, drop_rate=0., with_cp=False,
                 conv_cfg=None, norm_cfg=dict(type='BN'), dcn=None, dilation=1):
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = norm_layer(norm_cfg, in_channels)
        self.conv1 = build_conv_layer(conv_cfg, in_channels, mid, 1, bias=False)
        self.norm2 = norm_layer(norm_cfg, mid)
        self.conv2 = build_conv3x3(conv_cfg, dcn, mid, growth_rate, dilation=dilation)
        self.drop_rate = drop_rate
        self.with_cp = with_cp

    def _inner_forward(self, *features):
        # the concatenation is dropped once normalised (inference) and the ReLUs run in place on
        # the fresh norm outputs: two live copies of the widening input at most, not three
        x = self.norm1(torch.cat(features, 1))
        x = self.conv1(F.relu(x, inplace=True))
        x = self.conv2(F.relu(self.norm2(x), inplace=True))
        return F.dropout(x, p=self.drop_rate, training=self.training) if self.drop_rate else x

    def forward(self, features):
        # memory-efficient DenseNet: the concatenation and its normalised copies are what grows
        # quadratically with depth; checkpointing recomputes them in backward instead of storing
        if checkpoints(self.with_cp, *features):
            return cp.checkpoint(self._inner_forward, *features, use_reentrant=False)
        return self._inner_forward(*features)


class DenseBlock(nn.ModuleDict):
    """`num_layers` dense layers; returns the concatenation of the input and every new output."""

    def __init__(self, num_layers, in_channels, growth_rate, **layer_kwargs):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f'denselayer{i + 1}',
                            DenseLayer(in_channels + i * growth_rate, growth_rate, **layer_kwargs))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """norm-relu-1x1 conv (compression) - 2x2 average pool (none at stride 1)."""

    def __init__(self, in_channels, out_channels, conv_cfg=None, norm_cfg=dict(type='BN'),
                 stride=2):
        super().__init__(OrderedDict([
            ('norm', norm_layer(norm_cfg, in_channels)),
            ('relu', nn.ReLU(inplace=True)),
            ('conv', build_conv_layer(conv_cfg, in_channels, out_channels, 1, bias=False)),
            ('pool', nn.AvgPool2d(kernel_size=2, stride=2) if stride == 2 else nn.Identity()),
        ]))


@MODELS.register_module()
class DenseNet(BaseBackbone):
    """DenseNet-BC 121/169/201/161/264 with mmdet-style options.

    Args:
        arch (int | str | dict): a depth of `arch_settings` or a dict with `growth_rate`,
            `depths` (layers per dense block, any number of blocks) and optionally
            `init_channels` (default 2 x growth_rate).
        num_stages (int, optional): dense blocks to build; None builds every block of the arch.
        bn_size (int): bottleneck width of a dense layer, in multiples of growth_rate.
        drop_rate (float): dropout after every dense layer (training only).
        compression (float): fraction of channels a transition keeps (mmpretrain:
            `compression_factor`).
        with_cp (bool): checkpoint every dense layer ("memory-efficient" DenseNet; mmpretrain:
            `memory_efficient`).
        dcn, stage_with_dcn: deformable 3x3 convs in the dense layers of the chosen stages.
        strides, dilations: per stage (stage 1 cannot stride); `output_stride` (8/16/32) sets
            both the mmseg way.
        act_cfg: mmpretrain's argument; only ReLU, the activation of every DenseNet.
    The other arguments are those of `BaseBackbone` / mmdet's ResNet; out_indices=None emits
    every stage.
    """
    arch_settings = {
        121: dict(growth_rate=32, depths=(6, 12, 24, 16), init_channels=64),
        169: dict(growth_rate=32, depths=(6, 12, 32, 32), init_channels=64),
        201: dict(growth_rate=32, depths=(6, 12, 48, 32), init_channels=64),
        161: dict(growth_rate=48, depths=(6, 12, 36, 24), init_channels=96),
        264: dict(growth_rate=32, depths=(6, 12, 64, 48), init_channels=64),
    }
    arch_dict_help = 'a dict(growth_rate=..., depths=..., init_channels=...)'

    def __init__(self, arch=121, *, num_stages=None, bn_size=4, drop_rate=0., compression=0.5,
                 conv_cfg=None, dcn=None, stage_with_dcn=None, strides=None, dilations=None,
                 output_stride=None, memory_efficient=None, compression_factor=None,
                 act_cfg=None, with_cp=False, **kwargs):
        arch = self.resolve_arch(arch)
        # every dense block of the arch unless num_stages says fewer
        self.max_stages = len(arch['depths'])
        with_cp = resolve_alias('with_cp', with_cp, False, 'memory_efficient', memory_efficient)
        super().__init__(num_stages=self.max_stages if num_stages is None else num_stages,
                         with_cp=with_cp, **kwargs)
        num_stages = self.num_stages
        compression = resolve_alias('compression', compression, 0.5, 'compression_factor',
                                    compression_factor)
        if act_cfg is not None and not (isinstance(act_cfg, dict)
                                        and act_cfg.get('type') == 'ReLU'):
            raise InvalidArgumentError(f'act_cfg must be None or ReLU (DenseNet\'s activation, '
                                       f'as in torchvision, timm and mmpretrain\'s default); got '
                                       f'{act_cfg!r}')
        strides, dilations = resolve_strides(output_stride, strides, dilations, num_stages,
                                             first_stage_strides=False)
        check_int('bn_size', bn_size)
        check_number('drop_rate', drop_rate, 0, 1, high_open=True)
        check_number('compression', compression, 0, 1, low_open=True)
        stage_with_dcn = self.check_layer_options(conv_cfg, dcn, stage_with_dcn)
        self.growth_rate = arch['growth_rate']
        self.depths = tuple(arch['depths'])[:num_stages]
        self.init_channels = arch['init_channels']
        self.dcn, self.stage_with_dcn = dcn, stage_with_dcn
        norm_cfg = self.norm_cfg

        self.conv0 = build_conv_layer(conv_cfg, self.in_channels, self.init_channels, 7,
                                      stride=2, padding=3, bias=False)
        self.norm0 = norm_layer(norm_cfg, self.init_channels)
        self.pool0 = MaxPool2d(kernel_size=3, stride=2, padding=1)

        channels, stage_channels = self.init_channels, []
        for i, num_layers in enumerate(self.depths):
            stage = nn.Sequential()
            if i > 0:  # the previous block's transition opens this stage (as a downsample)
                compressed = int(channels * compression)
                if compressed < 1:
                    raise InvalidArgumentError(
                        f'compression={compression} keeps no channel of the {channels} entering '
                        f'stage{i + 1}; it must keep at least one')
                stage.add_module('transition', Transition(channels, compressed, conv_cfg,
                                                          norm_cfg, stride=strides[i]))
                channels = compressed
            stage.add_module('block', DenseBlock(
                num_layers, channels, self.growth_rate, bn_size=bn_size, drop_rate=drop_rate,
                with_cp=self.with_cp, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                dcn=dcn if stage_with_dcn[i] else None, dilation=dilations[i]))
            channels += num_layers * self.growth_rate
            if i == len(self.depths) - 1:  # the classifier's final norm closes the last stage
                stage.add_module('norm', norm_layer(norm_cfg, channels))
                stage.add_module('relu', nn.ReLU(inplace=True))
            self.add_stage(f'stage{i + 1}', stage)
            stage_channels.append(channels)
        self.set_feature_info(stage_channels, stage_reductions(strides))

    @classmethod
    def check_arch_dict(cls, arch, num_stages=None) -> dict:
        missing = {'growth_rate', 'depths'} - set(arch)
        unknown = set(arch) - {'growth_rate', 'depths', 'init_channels'}
        if missing or unknown:
            raise InvalidArgumentError(f'arch dict needs keys growth_rate, depths and '
                                       f'optionally init_channels; got {sorted(arch)}')
        growth_rate = check_int('arch growth_rate', arch['growth_rate'])
        depths = arch['depths']
        if not isinstance(depths, (list, tuple)) or not depths:
            raise ArgumentTypeError(f'arch depths must be a non-empty list of layer counts '
                                    f'per dense block; got {depths!r}')
        depths = check_stage_ints('arch depths', depths, len(depths))
        return dict(arch, depths=depths, init_channels=check_int(
            'arch init_channels', arch.get('init_channels', 2 * growth_rate)))

    def forward_stem(self, x):
        return self.pool0(F.relu(self.norm0(self.conv0(x)), inplace=True))

    def feature_sizes(self, size):
        # the transitions' 2x2 average pools are unpadded: each needs 2 px
        return self.chained_feature_sizes(size, (self.conv0, self.pool0))

    def stem_modules(self):
        return [self.conv0, self.norm0]
