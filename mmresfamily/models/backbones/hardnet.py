"""HarDNet (Chao et al. 2019, "HarDNet: A Low Memory Traffic Network"), after PingoLH's design.

A harmonic dense block links layer l to the layers l - 2^n (n >= 0, l divisible by 2^n); a
layer's width is growth_rate x grmul^(links - 1), rounded to even, so the layers with many links
are wide. The block outputs the odd layers and the last one, concatenated. Every conv is
Conv-BN-ReLU6; the depth-wise variants (39DS, 68DS) replace 3x3 convs by 1x1 conv + depth-wise
3x3 (BN, no activation) and max pools by depth-wise strided convs. Each block is followed by a
1x1 "transition" conv; a stage gathers the blocks run at one resolution and emits the last
transition's output (strides 4/8/16/32), before the next downsampling. For segmentation, a stage
with stride 1 skips its downsampling max pool (the DS variants' depth-wise conv keeps its
weights, at stride 1 and the previous stage's dilation) and `dilations` widen its 3x3 convs
(`output_stride=8`: d8 features).
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer

from ...errors import check_number
from ...registry import MODELS
from ..layers.builders import build_conv3x3
from ..layers.capture import checkpoints
from ..layers.norm import norm_layer
from ..layers.pooling import MaxPool2d
from .base import BaseBackbone
from .stages import resolve_strides, stage_reductions


class ConvLayer(nn.Sequential):
    """conv (padding k//2) - norm - ReLU6; a 3x3 conv may be deformable (`dcn`)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), dcn=None, dilation=1):
        if kernel_size == 3:
            conv = build_conv3x3(conv_cfg, dcn, in_channels, out_channels, stride, dilation)
        else:
            conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size,
                                    stride=stride, padding=kernel_size // 2, bias=False)
        super().__init__(OrderedDict([('conv', conv),
                                      ('norm', norm_layer(norm_cfg, out_channels)),
                                      ('relu', nn.ReLU6(inplace=True))]))


class DWConvLayer(nn.Sequential):
    """depth-wise 3x3 conv - norm (no activation, as in the reference)."""

    def __init__(self, channels, stride=1, conv_cfg=None, norm_cfg=dict(type='BN'), dcn=None,
                 dilation=1):
        super().__init__(OrderedDict([
            ('dwconv', build_conv3x3(conv_cfg, dcn, channels, channels, stride, dilation,
                                     groups=channels)),
            ('norm', norm_layer(norm_cfg, channels))]))


class CombConvLayer(nn.Sequential):
    """The depth-wise variants' layer: 1x1 ConvLayer then a depth-wise 3x3."""

    def __init__(self, in_channels, out_channels, conv_cfg=None, norm_cfg=dict(type='BN'),
                 dcn=None, dilation=1):
        super().__init__(OrderedDict([
            ('layer1', ConvLayer(in_channels, out_channels, 1, conv_cfg=conv_cfg,
                                 norm_cfg=norm_cfg)),
            ('layer2', DWConvLayer(out_channels, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                   dcn=dcn, dilation=dilation))]))


def harmonic_links(layer: int, base_channels: int, growth_rate: int, grmul: float):
    """(out_channels, in_channels, linked layers) of layer `layer` (0 = the block input)."""
    if layer == 0:
        return base_channels, 0, []
    links = [layer - 2**n for n in range(10) if layer % 2**n == 0]
    out_channels = growth_rate * grmul**(len(links) - 1)
    out_channels = int(int(out_channels + 1) / 2) * 2  # the reference's rounding to even
    in_channels = sum(harmonic_links(k, base_channels, growth_rate, grmul)[0] for k in links)
    return out_channels, in_channels, links


class HarDBlock(nn.Module):
    """Harmonic dense block; output = cat(odd layers, last layer)."""

    def __init__(self, in_channels, growth_rate, grmul, num_layers, depthwise=False,
                 with_cp=False, conv_cfg=None, norm_cfg=dict(type='BN'), dcn=None, dilation=1):
        super().__init__()
        self.links, self.with_cp, self.out_channels = [], with_cp, 0
        # the outputs handed on (index 0 is the block input): odd layers and the last
        self.kept = [i for i in range(1, num_layers + 1) if i % 2 == 1 or i == num_layers]
        layers = []
        for i in range(1, num_layers + 1):
            cout, cin, links = harmonic_links(i, in_channels, growth_rate, grmul)
            self.links.append(links)
            layer_cls = CombConvLayer if depthwise else ConvLayer
            layers.append(layer_cls(cin, cout, conv_cfg=conv_cfg, norm_cfg=norm_cfg, dcn=dcn,
                                    dilation=dilation))
            if i in self.kept:
                self.out_channels += cout
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def _run(layer, *inputs):
        return layer(torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0])

    def forward(self, x):
        outputs = [x]
        for layer, links in zip(self.layers, self.links):
            inputs = [outputs[k] for k in links]
            if checkpoints(self.with_cp, *inputs):
                # the concatenated input is recomputed in backward instead of being stored
                out = cp.checkpoint(self._run, layer, *inputs, use_reentrant=False)
            else:
                out = self._run(layer, *inputs)
            outputs.append(out)
        return torch.cat([outputs[i] for i in self.kept], 1)


@MODELS.register_module()
class HarDNet(BaseBackbone):
    """HarDNet-39DS/68/68DS/85 with mmdet-style options.

    Args:
        arch (str | int): a key of `arch_settings` (68 and 85 may be given as ints).
        drop_rate (float, optional): dropout before the last transition conv; None takes the
            reference's (0.1 for HarDNet-85, none otherwise).
        dcn, stage_with_dcn: deformable 3x3 convs (depth-wise ones for the DS variants) in the
            harmonic blocks of the chosen stages.
        with_cp: checkpoint every harmonic layer.
        strides, dilations: per stage (stage 1 cannot stride); `output_stride` (8/16/32) sets
            both the mmseg way.
    The other arguments are those of `BaseBackbone` / mmdet's ResNet; out_indices=None emits
    every stage.
    """
    # first_ch, ch_list (transition widths), grmul, gr (growth), n_layers, down_samp, depthwise,
    # drop_rate (the reference's dropout before the last transition)
    arch_settings = {
        '39DS': dict(first_ch=(24, 48), ch_list=(96, 320, 640, 1024), grmul=1.6,
                     gr=(16, 20, 64, 160), n_layers=(4, 16, 8, 4), down_samp=(1, 1, 1, 0),
                     depthwise=True, drop_rate=0.),
        '68': dict(first_ch=(32, 64), ch_list=(128, 256, 320, 640, 1024), grmul=1.7,
                   gr=(14, 16, 20, 40, 160), n_layers=(8, 16, 16, 16, 4),
                   down_samp=(1, 0, 1, 1, 0), depthwise=False, drop_rate=0.),
        '68DS': dict(first_ch=(32, 64), ch_list=(128, 256, 320, 640, 1024), grmul=1.7,
                     gr=(14, 16, 20, 40, 160), n_layers=(8, 16, 16, 16, 4),
                     down_samp=(1, 0, 1, 1, 0), depthwise=True, drop_rate=0.),
        '85': dict(first_ch=(48, 96), ch_list=(192, 256, 320, 480, 720, 1280), grmul=1.7,
                   gr=(24, 24, 28, 36, 48, 256), n_layers=(8, 16, 16, 16, 16, 4),
                   down_samp=(1, 0, 1, 0, 1, 0), depthwise=False, drop_rate=0.1),
    }

    def __init__(self, arch='68', *, drop_rate=None, conv_cfg=None, dcn=None,
                 stage_with_dcn=None, strides=None, dilations=None, output_stride=None,
                 **kwargs):
        super().__init__(**kwargs)
        num_stages = self.num_stages
        strides, dilations = resolve_strides(output_stride, strides, dilations, num_stages,
                                             first_stage_strides=False)
        cfg = self.resolve_arch(arch)
        stage_with_dcn = self.check_layer_options(conv_cfg, dcn, stage_with_dcn)
        self.arch = str(arch)
        check_number('drop_rate', drop_rate, 0, 1, high_open=True, or_none=True)
        drop_rate = cfg['drop_rate'] if drop_rate is None else drop_rate
        self.depthwise = depthwise = cfg['depthwise']
        self.dcn, self.stage_with_dcn = dcn, stage_with_dcn
        conv_kw = dict(conv_cfg=conv_cfg, norm_cfg=self.norm_cfg)

        first, second = cfg['first_ch']
        self.stem = nn.Sequential(
            ConvLayer(self.in_channels, first, 3, stride=2, **conv_kw),
            ConvLayer(first, second, 1 if depthwise else 3, **conv_kw),
            self.make_downsample(second, in_stem=True, **conv_kw))

        # group the blocks by resolution: a stage ends where the reference downsamples
        stage_blocks, current = [], []
        for i, down in enumerate(cfg['down_samp']):
            current.append(i)
            if down or i == len(cfg['down_samp']) - 1:
                stage_blocks.append(current)
                current = []
        assert len(stage_blocks) == 4, 'every arch has four resolutions'

        channels, stage_channels = second, []
        last_block = len(cfg['n_layers']) - 1
        for s, blocks in enumerate(stage_blocks[:num_stages]):
            stage = nn.Sequential()
            if s > 0:
                # its input has the previous stage's resolution, hence that stage's dilation
                stage.add_module('downsample', self.make_downsample(
                    channels, in_stem=False, dcn=dcn if stage_with_dcn[s] else None,
                    stride=strides[s], dilation=dilations[s - 1], **conv_kw))
            for k, b in enumerate(blocks):
                block = HarDBlock(channels, cfg['gr'][b], cfg['grmul'], cfg['n_layers'][b],
                                  depthwise, self.with_cp, dcn=dcn if stage_with_dcn[s] else None,
                                  dilation=dilations[s], **conv_kw)
                stage.add_module(f'block{k + 1}', block)
                if b == last_block and drop_rate > 0:
                    stage.add_module('drop', nn.Dropout(drop_rate))
                channels = cfg['ch_list'][b]
                stage.add_module(f'transition{k + 1}',
                                 ConvLayer(block.out_channels, channels, 1, **conv_kw))
            self.add_stage(f'stage{s + 1}', stage)
            stage_channels.append(channels)
        self.set_feature_info(stage_channels, stage_reductions(strides))

    def make_downsample(self, channels, in_stem, conv_cfg, norm_cfg, dcn=None, stride=2,
                        dilation=1):
        """3x3 max pool in the stem / 2x2 between stages (none at stride 1), or a depth-wise
        conv (DS)."""
        if self.depthwise:
            return DWConvLayer(channels, stride=stride, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                               dcn=dcn, dilation=dilation)
        if in_stem:
            return MaxPool2d(kernel_size=3, stride=2, padding=1)
        return MaxPool2d(kernel_size=2, stride=2) if stride == 2 else nn.Identity()

    def forward_stem(self, x):
        return self.stem(x)

    def feature_sizes(self, size):
        # the 2x2 max pools between stages (not the DS variants' strided convs) are unpadded
        return self.chained_feature_sizes(size, self.stem)

    def stem_modules(self):
        return [self.stem]
