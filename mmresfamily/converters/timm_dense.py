"""timm -> mmresfamily for the dense-connection families: densenet121/161/169/201 and
dpn68/68b/92/98/107/131. timm keeps both in one flat `features` Sequential; ours groups them in
stages, so conversion renames the containers and keeps the in-block names. Classifier heads (and
DPN's classifier-only final norm `conv5_bn_ac`) are dropped."""
import re
from typing import Optional

from .timm import register_timm_family

DENSENET_DEPTHS = (121, 161, 169, 201)  # densenet264d has a deep stem: not this layout
DPN_ARCHS = ('68', '68b', '92', '98', '107', '131')


def parse_dense_family(name: str) -> Optional[dict]:
    m = re.match(r'densenet(\d+)$', name)
    if m and int(m.group(1)) in DENSENET_DEPTHS:
        return dict(type='mmresfamily.DenseNet', arch=int(m.group(1)))
    m = re.match(r'dpn(\w+)$', name)
    if m and m.group(1) in DPN_ARCHS:
        return dict(type='mmresfamily.DPN', arch=m.group(1))
    return None


def densenet_key(key: str, num_blocks: int) -> Optional[str]:
    """torchvision/timm DenseNet key -> ours, or None for the classifier."""
    if key.startswith('classifier.'):
        return None
    key = key[len('features.'):] if key.startswith('features.') else key
    # torchvision before 0.3 named the dense-layer modules `norm.1`, `conv.2`, ...
    key = re.sub(r'(denselayer\d+\.(?:norm|relu|conv))\.([12])\.', r'\1\2.', key)
    key = re.sub(r'^denseblock(\d+)\.', r'stage\1.block.', key)
    key = re.sub(r'^transition(\d+)\.', lambda m: f'stage{int(m.group(1)) + 1}.transition.', key)
    return re.sub(r'^norm5\.', f'stage{num_blocks}.norm.', key)


def convert_densenet(state_dict: dict):
    # default: no dense block (not a DenseNet checkpoint): the fit check in convert() says so
    num_blocks = max((int(m.group(1)) for m in (re.search(r'denseblock(\d+)\.', k)
                                               for k in state_dict) if m), default=0)
    out, dropped = {}, []
    for key, value in state_dict.items():
        new_key = densenet_key(key, num_blocks)
        if new_key is None:
            dropped.append(key)
        else:
            out[new_key] = value
    return out, dropped


def dpn_key(key: str) -> Optional[str]:
    if key.startswith(('classifier.', 'features.conv5_bn_ac.')):
        return None
    key = key.replace('features.conv1_1.', 'stem.')
    key = re.sub(r'features\.conv(\d)_(\d+)\.',
                 lambda m: f'stage{int(m.group(1)) - 1}.{int(m.group(2)) - 1}.', key)
    key = re.sub(r'\.c1x1_w_s[12]\.', '.proj.', key)
    return re.sub(r'\.bn\.', '.norm.', key)


@register_timm_family(parse_dense_family)
def convert_dense_family(cfg: dict, state_dict: dict):
    if cfg['type'].endswith('DenseNet'):
        return convert_densenet(state_dict)
    out, dropped = {}, []
    for key, value in state_dict.items():
        new_key = dpn_key(key)
        if new_key is None:
            dropped.append(key)
        else:
            out[new_key] = value
    return out, dropped
