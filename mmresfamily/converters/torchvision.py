"""torchvision -> mmresfamily: DenseNet-121/161/169/201 state_dicts, including the pre-0.3 key
style (`denselayer1.norm.1.weight`). The classifier is dropped."""
import re

from .registry import register_converter
from .timm_dense import DENSENET_DEPTHS, convert_densenet


@register_converter('torchvision')
def convert_torchvision(model_name: str, state_dict: dict):
    m = re.match(r'densenet(\d+)$', model_name)
    if not m or int(m.group(1)) not in DENSENET_DEPTHS:
        known = ', '.join(f'densenet{d}' for d in DENSENET_DEPTHS)
        raise ValueError(f'torchvision model must be one of {known}; got {model_name!r}')
    out, dropped = convert_densenet(state_dict)
    return out, dict(type='mmresfamily.DenseNet', arch=int(m.group(1))), dropped
