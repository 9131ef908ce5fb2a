"""The authors' own releases -> mmresfamily (source `official`):

    resnest{50,101,200,269}                   zhanghang1989/ResNeSt (resnest/torch)
    res2net{50,101}_{W}w_{S}s, res2net50      Res2Net/Res2Net-PretrainedModels res2net.py
    res2net{50,101,152}_v1b[_26w_4s]          ... res2net_v1b.py (deep stem, avg-down shortcuts)
    res2next50                                ... res2next.py (groups 8, width 4, 4 scales)
    hardnet{68,85,39ds,68ds}                  PingoLH/Pytorch-HarDNet hardnet.py
    rednet{26,38,50,101,152}                  d-li14/involution (mmcls; `backbone.` prefix)

ResNeSt and Res2Net use the keys timm kept when it ported them (`conv1.0..6` + `bn1` deep stem,
`conv2.{conv,bn0,fc1,bn1,fc2}`, `convs.i` / `bns.i`), so timm's ResNet-family map applies.
HarDNet is one flat `base` ModuleList (stem, then per block: block, [dropout], 1x1 transition,
[downsample]); its indices are renamed to our stages. RedNet's mmcls keys are ours. Classifier
heads (`fc`, the last `base` entry, `head.*`) are dropped.
"""
import re

from .openmmlab import split_backbone
from .registry import register_converter
from .timm import convert_resnet_family


def _res2net(depth, width=26, scales=4, groups=1, v1b=False):
    cfg = dict(type='mmresfamily.Res2Net', depth=int(depth), base_width=int(width),
               scales=int(scales), deep_stem=v1b, avg_down=v1b)
    return dict(cfg, groups=groups) if groups > 1 else cfg


# (name pattern, make(*groups) -> cfg); first match wins
OFFICIAL_MODELS = [
    (r'resnest(50|101|200|269)', lambda d: dict(type='mmresfamily.ResNeSt', depth=int(d))),
    (r'res2net(50|101|152)_v1b(?:_26w_4s)?', lambda d: _res2net(d, v1b=True)),
    (r'res2net(50|101)_(\d+)w_(\d+)s', lambda d, w, s: _res2net(d, w, s)),
    (r'res2net(50)', lambda d: _res2net(d)),
    (r'res2next(50)', lambda d: _res2net(d, width=4, groups=8)),
    (r'hardnet(68|85|39ds|68ds)', lambda a: dict(type='mmresfamily.HarDNet', arch=a.upper())),
    (r'rednet(26|38|50|101|152)', lambda d: dict(type='mmresfamily.RedNet', depth=int(d))),
]
KNOWN = ('resnest{50,101,200,269}, res2net{50,101}_{W}w_{S}s, res2net50, '
         'res2net{50,101,152}_v1b[_26w_4s], res2next50, hardnet{68,85,39ds,68ds}, '
         'rednet{26,38,50,101,152}')


def hardnet_index_map(arch: str):
    """Official `base.<index>` -> our module path, and the classifier's index."""
    from ..models.backbones.hardnet import HarDNet
    settings = HarDNet.arch_settings[arch]
    table = {0: 'stem.0', 1: 'stem.1', 2: 'stem.2'}
    index, stage, k = 3, 1, 1
    last = len(settings['down_samp']) - 1
    for b, down in enumerate(settings['down_samp']):
        table[index] = f'stage{stage}.block{k}'
        index += 2 if b == last and settings['drop_rate'] > 0 else 1  # HarDNet-85's Dropout
        table[index] = f'stage{stage}.transition{k}'
        index += 1
        if down:  # max pool (no weights) or depth-wise conv: opens our next stage
            stage, k = stage + 1, 1
            table[index] = f'stage{stage}.downsample'
            index += 1
        else:
            k += 1
    return table, index


def convert_hardnet(arch: str, state_dict: dict):
    table, head = hardnet_index_map(arch)
    out, dropped = {}, []
    for key, value in state_dict.items():
        m = re.match(r'base\.(\d+)\.(.*)$', key)
        index = int(m.group(1)) if m else None
        if index == head:
            dropped.append(key)
        elif index in table:
            out[f'{table[index]}.{m.group(2)}'] = value
        else:  # not a key of the official layout: keep it, so strict loading names it
            out[key] = value
    return out, dropped


@register_converter('official')
def convert_official(model_name: str, state_dict: dict):
    for pattern, make in OFFICIAL_MODELS:
        m = re.fullmatch(pattern, model_name)
        if m:
            cfg = make(*m.groups())
            break
    else:
        raise ValueError(f'official model must be one of {KNOWN}; got {model_name!r}')
    if cfg['type'].endswith('HarDNet'):
        out, dropped = convert_hardnet(cfg['arch'], state_dict)
    elif cfg['type'].endswith('RedNet'):
        out, dropped = split_backbone(state_dict)
        dropped += [k for k in out if k.startswith(('head.', 'fc.'))]  # a bare classifier
        out = {k: v for k, v in out.items() if not k.startswith(('head.', 'fc.'))}
    else:
        out, dropped = convert_resnet_family(cfg, state_dict)
    return out, cfg, dropped
