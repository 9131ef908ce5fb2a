"""torchvision -> mmresfamily: ResNet-18/34/50/101/152, ResNeXt-50 32x4d / 101 32x8d / 101 64x4d
and DenseNet-121/161/169/201 state_dicts (DenseNet also in the pre-0.3 key style,
`denselayer1.norm.1.weight`). The classifier (`fc`, `classifier`) is dropped.

torchvision's ResNet keys are ours (`conv1`, `bn1`, `layerN.i.*`, `downsample.0/1`) and its
blocks stride the 3x3 (our 'pytorch' style), so the map is identity. wide_resnet50_2/101_2 are
not covered: their bottleneck is twice as wide with groups=1, which our ResNet/ResNeXt cannot
express (ResNeXt's width rule applies only when groups > 1).
"""
import re

from .registry import register_converter
from .timm_dense import DENSENET_DEPTHS, convert_densenet

RESNETS = {f'resnet{d}': dict(type='mmresfamily.ResNet', depth=d) for d in (18, 34, 50, 101, 152)}
RESNETS.update({
    f'resnext{d}_{g}x{w}d': dict(type='mmresfamily.ResNeXt', depth=d, groups=g, base_width=w)
    for d, g, w in ((50, 32, 4), (101, 32, 8), (101, 64, 4))})


def convert_resnet(state_dict: dict):
    dropped = [k for k in state_dict if k.startswith('fc.')]
    return {k: v for k, v in state_dict.items() if not k.startswith('fc.')}, dropped


@register_converter('torchvision')
def convert_torchvision(model_name: str, state_dict: dict):
    if model_name in RESNETS:
        out, dropped = convert_resnet(state_dict)
        return out, dict(RESNETS[model_name]), dropped
    m = re.match(r'densenet(\d+)$', model_name)
    if m and int(m.group(1)) in DENSENET_DEPTHS:
        out, dropped = convert_densenet(state_dict)
        return out, dict(type='mmresfamily.DenseNet', arch=int(m.group(1))), dropped
    known = ', '.join([f'densenet{d}' for d in DENSENET_DEPTHS] + list(RESNETS))
    raise ValueError(f'torchvision model must be one of {known}; got {model_name!r}')
