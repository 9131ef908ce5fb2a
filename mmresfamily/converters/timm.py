"""timm -> mmresfamily. One handler per family: `parse(name) -> cfg or None` and
`convert(cfg, state_dict) -> (state_dict, dropped_keys)`; families in other modules add theirs
with `register_timm_family`. This module holds the ResNet core family (resnet*, resnext*,
resnest*, res2net*, resnetv2_* with BatchNorm). Classifier heads (and resnetv2's final norm) are
dropped."""
import re
from typing import Callable, List, Optional, Tuple

from .registry import register_converter

# (parse, convert) per family, tried in order
TIMM_FAMILIES: List[Tuple[Callable[[str], Optional[dict]], Callable]] = []


def register_timm_family(parse: Callable[[str], Optional[dict]]):
    """Decorate a family's converter; `parse` maps a timm model name to a backbone cfg or None."""
    def wrap(convert_fn):
        TIMM_FAMILIES.append((parse, convert_fn))
        return convert_fn
    return wrap

# timm deep stem `conv1.{0,1,3,4,6}` + `bn1` == mmdet `stem.{0,1,3,4,6,7}`
_DEEP_STEM = {'conv1.0.': 'stem.0.', 'conv1.1.': 'stem.1.', 'conv1.3.': 'stem.3.',
              'conv1.4.': 'stem.4.', 'conv1.6.': 'stem.6.', 'bn1.': 'stem.7.'}
_PREACT_DEEP_STEM = {'stem.conv1.': 'stem.0.', 'stem.norm1.': 'stem.1.',
                     'stem.conv2.': 'stem.3.', 'stem.norm2.': 'stem.4.',
                     'stem.conv3.': 'stem.6.', 'stem.conv.': 'conv1.'}


def parse_resnet_family(name: str) -> Optional[dict]:
    """The backbone config matching a timm model name of the ResNet core family."""
    rules = [
        (r'resnet(\d+)$', lambda d: dict(type='mmresfamily.ResNet', depth=int(d))),
        (r'resnet(\d+)c$', lambda d: dict(type='mmresfamily.ResNetV1c', depth=int(d))),
        (r'resnet(\d+)d$', lambda d: dict(type='mmresfamily.ResNetV1d', depth=int(d))),
        (r'resnext(\d+)(d?)_(\d+)x(\d+)d$',
         lambda d, v, g, w: dict(type='mmresfamily.ResNeXt', depth=int(d), groups=int(g),
                                 base_width=int(w), deep_stem=bool(v), avg_down=bool(v))),
        (r'resnest(\d+)([de])$',
         lambda d, v: dict(type='mmresfamily.ResNeSt', depth=int(d),
                           stem_channels=64 if v == 'd' else 128)),
        (r'res2net(\d+)_(\d+)w_(\d+)s$',
         lambda d, w, s: dict(type='mmresfamily.Res2Net', depth=int(d), base_width=int(w),
                              scales=int(s), deep_stem=False, avg_down=False)),
        (r'res2net(\d+)d$', lambda d: dict(type='mmresfamily.Res2Net', depth=int(d),
                                           base_width=26, scales=4)),
        (r'resnetv2_(\d+)(d?)$',
         lambda d, v: dict(type='mmresfamily.PreResNet', depth=int(d), deep_stem=bool(v),
                           avg_down=bool(v), out_norm=False)),
    ]
    for pattern, make in rules:
        m = re.match(pattern, name)
        if m:
            return make(*m.groups())
    return None


def _rename_prefix(key, table):
    for old, new in table.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _preact_key(key, avg_down):
    key = _rename_prefix(key, _PREACT_DEEP_STEM)
    m = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
    if not m:
        return key
    stage, block, rest = m.groups()
    rest = re.sub(r'^norm(\d)\.', r'bn\1.', rest)
    rest = rest.replace('downsample.conv.', 'downsample.1.' if avg_down else 'downsample.0.')
    return f'layer{int(stage) + 1}.{block}.{rest}'


@register_timm_family(parse_resnet_family)
def convert_resnet_family(cfg: dict, state_dict: dict):
    out, dropped = {}, []
    preact = cfg['type'].endswith('PreResNet')
    deep_stem = cfg.get('deep_stem', cfg['type'].endswith(('V1c', 'V1d', 'ResNeSt', 'Res2Net')))
    for key, value in state_dict.items():
        if key.startswith(('fc.', 'head.')) or (preact and key.startswith('norm.')):
            dropped.append(key)
            continue
        if preact:
            key = _preact_key(key, cfg['avg_down'])
        elif deep_stem:
            key = _rename_prefix(key, _DEEP_STEM)
        out[key] = value
    return out, dropped


@register_converter('timm')
def convert_timm(model_name: str, state_dict: dict):
    for parse, convert_family in TIMM_FAMILIES:
        cfg = parse(model_name)
        if cfg is not None:
            out, dropped = convert_family(cfg, state_dict)
            return out, cfg, dropped
    raise ValueError(f'timm model {model_name!r} is not one this converter knows; known '
                     f'families: resnet*, resnet*c/d, resnext*_GxWd, resnest*d/e, '
                     f'res2net*_Ww_Ss, res2net*d, resnetv2_*[d] and those of '
                     f'{sorted({fn.__module__ for _, fn in TIMM_FAMILIES})}')
