"""timm -> mmresfamily for the ResNet core family (resnet*, resnext*, resnest*, res2net*,
resnetv2_* with BatchNorm). Classifier heads (and resnetv2's final norm) are dropped."""
import re

from .registry import register_converter

# timm deep stem `conv1.{0,1,3,4,6}` + `bn1` == mmdet `stem.{0,1,3,4,6,7}`
_DEEP_STEM = {'conv1.0.': 'stem.0.', 'conv1.1.': 'stem.1.', 'conv1.3.': 'stem.3.',
              'conv1.4.': 'stem.4.', 'conv1.6.': 'stem.6.', 'bn1.': 'stem.7.'}
_PREACT_DEEP_STEM = {'stem.conv1.': 'stem.0.', 'stem.norm1.': 'stem.1.',
                     'stem.conv2.': 'stem.3.', 'stem.norm2.': 'stem.4.',
                     'stem.conv3.': 'stem.6.', 'stem.conv.': 'conv1.'}


def parse_model_name(name: str) -> dict:
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
    raise ValueError(f'timm model {name!r} is not of the ResNet core family this converter '
                     f'knows (resnet*, resnet*c/d, resnext*_GxWd, resnest*d/e, '
                     f'res2net*_Ww_Ss, res2net*d, resnetv2_*[d])')


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


@register_converter('timm')
def convert_timm(model_name: str, state_dict: dict):
    cfg = parse_model_name(model_name)
    out, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(('fc.', 'head.')) or (cfg['type'].endswith('PreResNet')
                                                 and key.startswith('norm.')):
            dropped.append(key)
            continue
        if cfg['type'].endswith('PreResNet'):
            key = _preact_key(key, cfg['avg_down'])
        elif cfg.get('deep_stem', cfg['type'].endswith(('V1c', 'V1d', 'ResNeSt', 'Res2Net'))):
            key = _rename_prefix(key, _DEEP_STEM)
        out[key] = value
    return out, cfg, dropped
