"""ResNet v1b/v1c/v1d: the blocks and the stage builder every ResNet-style family shares.

Key names follow mmdet/torchvision (`conv1`, `bn1`, `layer1.0.conv2`, `downsample.0`, deep stem
`stem.0..7`), so their checkpoints load unchanged.
"""
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, Sequential, constant_init

from ...errors import (
    InvalidArgumentError,
    check_flag,
    check_int,
    check_number,
    check_stage_ints,
    check_unsupported,
)
from ...registry import MODELS
from ..layers.builders import (
    build_conv3x3,
    build_stage_plugins,
    check_plugins,
    forward_plugins,
    make_plugin_layers,
)
from ..layers.capture import checkpoints
from ..layers.highway import HighwayGate
from ..layers.norm import build_norm, norm_layer
from ..layers.pooling import MaxPool2d
from .base import BaseBackbone, check_choice
from .layer_decay import resnet_layer_depth
from .stages import default_strides, stage_reductions


def check_drop_path_rate(rate):
    return check_number('drop_path_rate', rate, 0, 1, high_open=True)


class ResBlock(BaseModule):
    """What residual blocks share: style/stride bookkeeping, the shortcut, checkpointing.

    Subclasses build their layers and implement `residual(x)`; `merge` adds the residual branch
    to the shortcut, or gates the two with a Highway gate when `highway=True` (no gate, no cost,
    when off). `drop_path_rate` drops the residual branch per sample in training (stochastic
    depth, as mmpretrain); `expansion` overrides the class's output/bottleneck width ratio
    (mmpretrain's wide ResNets).
    """
    expansion = 1
    act_after_merge = True  # post-activation (v1); pre-activation blocks set False
    shortcut_norm = True  # pre-activation blocks project an already normalised input

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None, style='pytorch',
                 with_cp=False, conv_cfg=None, norm_cfg=dict(type='BN'), dcn=None, plugins=None,
                 highway=False, drop_path_rate=0., expansion=None, init_cfg=None):
        super().__init__(init_cfg)
        check_choice('style', style, ('pytorch', 'caffe'))
        self.expansion = self.check_expansion(expansion)
        self.inplanes, self.planes = inplanes, planes
        self.stride, self.dilation = stride, dilation
        self.style, self.with_cp = style, with_cp
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.dcn, self.plugins = dcn, check_plugins(plugins)
        # pytorch style strides the 3x3 conv, caffe style the first 1x1
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)
        self.highway = highway
        if highway:
            self.highway_gate = HighwayGate(planes * self.expansion)
        check_drop_path_rate(drop_path_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else None

    @classmethod
    def check_expansion(cls, expansion):
        """The ratio of output to bottleneck width: the class's own when None."""
        return cls.expansion if expansion is None else check_int('expansion', expansion)

    @classmethod
    def make_downsample(cls, inplanes, outplanes, stride, avg_down, conv_cfg, norm_cfg):
        """Projection shortcut: [AvgPool (avg_down)] + 1x1 conv [+ norm] (keys downsample.0/1/2)."""
        layers = []
        if avg_down:
            # ResNet-D: pool before a stride-1 projection; identity when nothing to pool
            layers.append(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
                          if stride > 1 else nn.Identity())
            stride = 1
        layers.append(build_conv_layer(conv_cfg, inplanes, outplanes, 1, stride=stride,
                                       bias=False))
        if cls.shortcut_norm:
            layers.append(norm_layer(norm_cfg, outplanes))
        return nn.Sequential(*layers)

    def add_norm(self, index, channels):
        name, norm = build_norm(self.norm_cfg, channels, postfix=index)
        self.add_module(name, norm)
        setattr(self, f'norm{index}_name', name)

    norm1 = property(lambda self: getattr(self, self.norm1_name))
    norm2 = property(lambda self: getattr(self, self.norm2_name))
    norm3 = property(lambda self: getattr(self, self.norm3_name))

    def zero_init_last(self):
        """Zero the residual branch's last scale (zero_init_residual): the block starts as
        identity."""
        raise NotImplementedError

    def residual(self, x):
        raise NotImplementedError

    def merge(self, out, identity):
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.highway:
            return self.highway_gate(out, identity)
        # in place, as mmdet and timm: the branch output is not needed for its own backward
        return out.add_(identity)

    def _inner_forward(self, x):
        out = self.residual(x)
        # the shortcut after the branch, as mmdet/timm: its output is not held while the branch's
        # temporaries peak
        return self.merge(out, x if self.downsample is None else self.downsample(x))

    def forward(self, x):
        if checkpoints(self.with_cp, x):
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out) if self.act_after_merge else out


class BasicBlock(ResBlock):
    expansion = 1

    @classmethod
    def check_expansion(cls, expansion):
        if expansion not in (None, 1):
            raise InvalidArgumentError(f'expansion must be 1 (or None) for BasicBlock '
                                       f'(ResNet-18/34): it has no bottleneck to widen; got '
                                       f'{expansion!r}')
        return 1

    def __init__(self, inplanes, planes, **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        check_unsupported('dcn', self.dcn, 'BasicBlock (ResNet-18/34)',
                          '; use a Bottleneck depth (50, 101, 152) for DCN stages')
        check_unsupported('plugins', self.plugins, 'BasicBlock (ResNet-18/34)',
                          '; use a Bottleneck depth (50, 101, 152)')
        self.conv1 = build_conv3x3(self.conv_cfg, None, inplanes, planes, self.stride,
                                   self.dilation)
        self.add_norm(1, planes)
        self.conv2 = build_conv3x3(self.conv_cfg, None, planes, planes)
        self.add_norm(2, planes)

    def zero_init_last(self):
        constant_init(self.norm2, 0)

    def residual(self, x):
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.conv2(out)  # own statement: conv1's output is freed before norm2 allocates
        return self.norm2(out)


class Bottleneck(ResBlock):
    """1x1 -> 3x3 (grouped when groups > 1: ResNeXt) -> 1x1, with DCN and plugins.

    Families change only the 3x3 step by overriding `build_conv2` / `forward_conv2`.
    """
    expansion = 4

    def __init__(self, inplanes, planes, groups=1, base_width=4, base_channels=64, **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        self.groups = groups = check_int('groups', groups)
        check_int('base_width', base_width)
        self.width = width = self.bottleneck_width(planes, groups, base_width, base_channels)
        self.conv1 = build_conv_layer(self.conv_cfg, inplanes, width, 1,
                                      stride=self.conv1_stride, bias=False)
        self.add_norm(1, width)
        self.build_conv2(width)
        self.conv3 = build_conv_layer(self.conv_cfg, width, planes * self.expansion, 1,
                                      bias=False)
        self.add_norm(3, planes * self.expansion)
        self.plugin_names = {
            position: make_plugin_layers(self, self.plugins, position, channels)
            for position, channels in (('after_conv1', width), ('after_conv2', width),
                                       ('after_conv3', planes * self.expansion))
        }

    @staticmethod
    def bottleneck_width(planes, groups, base_width, base_channels):
        """Channels between conv1 and conv3. ResNeXt rule (mmdet): groups x planes*base_width/64."""
        return planes if groups == 1 else (planes * base_width // base_channels) * groups

    def build_conv2(self, width):
        self.conv2 = build_conv3x3(self.conv_cfg, self.dcn, width, width, self.conv2_stride,
                                   self.dilation, self.groups)
        self.add_norm(2, width)

    def forward_conv2(self, x):
        return self.relu(self.norm2(self.conv2(x)))

    def zero_init_last(self):
        constant_init(self.norm3, 0)

    def residual(self, x):
        names = self.plugin_names
        out = self.relu(self.norm1(self.conv1(x)))
        out = forward_plugins(self, out, names['after_conv1'])
        out = forward_plugins(self, self.forward_conv2(out), names['after_conv2'])
        out = self.conv3(out)  # own statement: the 3x3 output is freed before norm3 allocates
        return forward_plugins(self, self.norm3(out), names['after_conv3'])


class ResLayer(Sequential):
    """One stage: `num_blocks` blocks, the first one strided and projecting the shortcut.

    `contract_dilation` halves the first block's dilation and `multi_grid` gives each block its
    own dilation (mmseg D8 semantics). `drop_path_rate` is one rate for every block or one per
    block.
    """

    def __init__(self, block, inplanes, planes, num_blocks, stride=1, dilation=1, avg_down=False,
                 conv_cfg=None, norm_cfg=dict(type='BN'), contract_dilation=False,
                 multi_grid=None, drop_path_rate=0., expansion=None, **block_kwargs):
        expansion = block.check_expansion(expansion)
        outplanes = planes * expansion
        downsample = None
        if stride != 1 or inplanes != outplanes:
            downsample = block.make_downsample(inplanes, outplanes, stride, avg_down, conv_cfg,
                                               norm_cfg)
        if multi_grid is not None:
            dilations = check_stage_ints('multi_grid (one dilation per block of the last stage)',
                                         multi_grid, num_blocks)
        else:
            first = dilation // 2 if contract_dilation and dilation > 1 else dilation
            dilations = (first, ) + (dilation, ) * (num_blocks - 1)
        rates = (tuple(drop_path_rate) if isinstance(drop_path_rate, (list, tuple))
                 else (drop_path_rate, ) * num_blocks)
        if len(rates) != num_blocks:
            raise InvalidArgumentError(f'drop_path_rate must be one rate or one per block '
                                       f'({num_blocks} blocks); got {drop_path_rate!r}')
        blocks = []
        for i in range(num_blocks):
            blocks.append(block(inplanes if i == 0 else outplanes, planes,
                                stride=stride if i == 0 else 1, dilation=dilations[i],
                                downsample=downsample if i == 0 else None, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, drop_path_rate=rates[i], expansion=expansion,
                                **block_kwargs))
        super().__init__(*blocks)


@MODELS.register_module()
class ResNet(BaseBackbone):
    """ResNet v1b (He et al. 2016, stride on the 3x3), with mmdet's options.

    Args follow mmdet's ResNet; in addition `contract_dilation` / `multi_grid` (mmseg D8),
    `highway` (Highway-gated shortcuts in every block), and mmpretrain's `drop_path_rate`
    (stochastic depth: per-block rates rise linearly from 0 to it over every block of the
    depth's arch) and `expansion` (output / bottleneck width; e.g. 2 with base_channels=128 is
    Wide ResNet-50-2). Families pass their block arguments by overriding `make_res_layer`.
    """
    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth, *, stem_channels=None, base_channels=64, strides=None,
                 dilations=None, style='pytorch', deep_stem=False, avg_down=False, conv_cfg=None,
                 dcn=None, stage_with_dcn=None, plugins=None, zero_init_residual=True,
                 contract_dilation=False, multi_grid=None, highway=False, drop_path_rate=0.,
                 expansion=None, **kwargs):
        super().__init__(**kwargs)  # the shared options (see BaseBackbone)
        num_stages = self.num_stages
        self.depth = check_choice('depth', depth, tuple(self.arch_settings))
        check_choice('style', style, ('pytorch', 'caffe'))
        strides = check_stage_ints('strides', default_strides(num_stages) if strides is None
                                   else strides, num_stages)
        dilations = check_stage_ints('dilations', self.per_stage(dilations, 1), num_stages)
        stage_with_dcn = self.check_layer_options(conv_cfg, dcn, stage_with_dcn)
        for flag, value in dict(deep_stem=deep_stem, avg_down=avg_down, highway=highway,
                                zero_init_residual=zero_init_residual,
                                contract_dilation=contract_dilation).items():
            check_flag(flag, value)
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]
        self.expansion = self.block.check_expansion(expansion)
        self.base_channels = check_int('base_channels', base_channels)
        # the deep stem's first two convs are half as wide: at least one channel
        self.stem_channels = check_int(
            'stem_channels', self.default_stem_channels() if stem_channels is None else
            stem_channels, minimum=2 if deep_stem else 1)
        self.style, self.deep_stem, self.avg_down = style, deep_stem, avg_down
        self.conv_cfg = conv_cfg
        self.zero_init_residual = zero_init_residual
        self.dcn, self.stage_with_dcn = dcn, stage_with_dcn

        self.build_stem()
        # mmpretrain's stochastic depth rule: spread over the whole arch, even when fewer
        # stages are built (plain numbers, on the CPU whatever the default device)
        drop_path_rates = torch.linspace(0, check_drop_path_rate(drop_path_rate),
                                         sum(stage_blocks), device='cpu').tolist()
        inplanes = self.stem_channels
        channels = []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            first_block = sum(self.stage_blocks[:i])
            self.add_stage(f'layer{i + 1}', self.make_res_layer(
                block=self.block, inplanes=inplanes, planes=planes, num_blocks=num_blocks,
                stride=strides[i], dilation=dilations[i], avg_down=avg_down, style=style,
                with_cp=self.with_cp, conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                dcn=dcn if stage_with_dcn[i] else None,
                plugins=build_stage_plugins(plugins, i, num_stages),
                contract_dilation=contract_dilation, highway=highway,
                multi_grid=multi_grid if i == num_stages - 1 else None, expansion=self.expansion,
                drop_path_rate=drop_path_rates[first_block:first_block + num_blocks]))
            inplanes = planes * self.expansion
            channels.append(inplanes)
        self.set_feature_info(channels, stage_reductions(strides))

    def make_res_layer(self, **kwargs):
        """Build one stage; families override to pass their block arguments."""
        return ResLayer(**kwargs)

    def default_stem_channels(self) -> int:
        """Stem width when `stem_channels` is None (mmdet: base_channels)."""
        return self.base_channels

    def build_stem(self):
        in_ch, out_ch = self.in_channels, self.stem_channels
        if self.deep_stem:
            mid = out_ch // 2
            layers = []
            for i, (cin, cout) in enumerate(((in_ch, mid), (mid, mid), (mid, out_ch))):
                layers += [
                    build_conv_layer(self.conv_cfg, cin, cout, 3, stride=2 if i == 0 else 1,
                                     padding=1, bias=False),
                    norm_layer(self.norm_cfg, cout),
                    nn.ReLU(inplace=True),
                ]
            self.stem = nn.Sequential(*layers)
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_ch, out_ch, 7, stride=2, padding=3,
                                          bias=False)
            self.norm1_name, norm1 = build_norm(self.norm_cfg, out_ch, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)

    @property
    def norm1(self):
        return getattr(self, self.norm1_name)

    def forward_stem(self, x):
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        return self.maxpool(x)

    def stem_modules(self):
        return [self.stem] if self.deep_stem else [self.conv1, self.norm1]

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """mmpretrain's layer-wise learning-rate decay (see `layer_decay.py`)."""
        return resnet_layer_depth(self.stage_blocks, param_name, prefix)

    def init_weights(self):
        super().init_weights()
        if self.zero_init_residual and not self.loads_pretrained:
            for m in self.modules():
                if isinstance(m, ResBlock):
                    m.zero_init_last()


@MODELS.register_module()
class ResNetV1c(ResNet):
    """ResNet-C: the 3x3 deep stem (Bag of Tricks, He et al. 2019)."""

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=False, **kwargs)


@MODELS.register_module()
class ResNetV1d(ResNet):
    """ResNet-D: deep stem plus average-pooled projection shortcuts."""

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=True, **kwargs)
