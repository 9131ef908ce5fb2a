"""mmdet / mmseg / mmpretrain -> mmresfamily.

The input is a bare backbone state_dict, or a whole model checkpoint (detector, segmentor,
classifier): then only the `backbone.*` keys are kept (prefix stripped) and every other key
(neck, heads, data preprocessor) is dropped and reported.

MODEL names, one scheme for the three sources (each accepts the families its codebase has):

    resnet{18,34,50,101,152}[_caffe]  ResNet; `_caffe`: style='caffe' (stride on the first 1x1)
    resnet{D}_v1c                      ResNetV1c                      mmseg, mmpretrain
    resnet{D}_v1d                      ResNetV1d
    resnext{50,101,152}_{G}x{W}d       ResNeXt(groups=G, base_width=W), e.g. resnext50_32x4d
    resnest{50,101,152,200,269}        ResNeSt
    res2net{50,101,152}_w{W}_s{S}      Res2Net(base_width=W, scales=S)  mmdet, mmpretrain
    densenet{121,161,169,201}          DenseNet                       mmpretrain

What the weights record is read from them: the deep-stem width (`stem_channels`) and, for Res2Net,
whether it has the deep stem and avg-down shortcuts (v1b) or not. What they do not record is not
in the returned cfg: segmentors' dilations/strides, DCN or plugin stages, frozen stages -- copy
those from the source config.

Layouts: mmdet's and mmseg's backbones use our key names (identity map). mmpretrain differs in
  * the deep stem: ConvModules `stem.{0,1,2}.{conv,bn}` = our `stem.{0,3,6}` / `stem.{1,4,7}`;
  * avg-down ResNets (V1d, ResNeSt): a stride-1 shortcut has no pool, so `downsample.{0,1}` are
    our `downsample.{1,2}` (ours keeps an Identity at `.0`);
  * DenseNet: `stem.{0,1}`, `stages.i.block.j`, `transitions.i` (the last one is the final norm).
Behaviour: mmdet's Res2Net does not pool the pass-through split of a stage's first block at
stride 1 (cfg `stride1_pool=False`); mmpretrain does (our default).
"""
import re
from functools import partial

from .registry import register_converter

RESNET_DEPTHS = (18, 34, 50, 101, 152)
BOTTLENECK_DEPTHS = (50, 101, 152)

# family: (name pattern, shown pattern, depths, make(depth, *other groups) -> cfg)
FAMILIES = {
    'resnet': (r'resnet(\d+)(_caffe)?', 'resnet{D}[_caffe]', RESNET_DEPTHS,
               lambda d, caffe: dict(type='mmresfamily.ResNet', depth=d,
                                     **(dict(style='caffe') if caffe else {}))),
    'resnet_v1c': (r'resnet(\d+)_v1c', 'resnet{D}_v1c', RESNET_DEPTHS,
                   lambda d: dict(type='mmresfamily.ResNetV1c', depth=d)),
    'resnet_v1d': (r'resnet(\d+)_v1d', 'resnet{D}_v1d', RESNET_DEPTHS,
                   lambda d: dict(type='mmresfamily.ResNetV1d', depth=d)),
    'resnext': (r'resnext(\d+)_(\d+)x(\d+)d', 'resnext{D}_{G}x{W}d', BOTTLENECK_DEPTHS,
                lambda d, g, w: dict(type='mmresfamily.ResNeXt', depth=d, groups=int(g),
                                     base_width=int(w))),
    'resnest': (r'resnest(\d+)', 'resnest{D}', (50, 101, 152, 200, 269),
                lambda d: dict(type='mmresfamily.ResNeSt', depth=d)),
    'res2net': (r'res2net(\d+)_w(\d+)_s(\d+)', 'res2net{D}_w{W}_s{S}', BOTTLENECK_DEPTHS,
                lambda d, w, s: dict(type='mmresfamily.Res2Net', depth=d, base_width=int(w),
                                     scales=int(s))),
    'densenet': (r'densenet(\d+)', 'densenet{D}', (121, 161, 169, 201),
                 lambda d: dict(type='mmresfamily.DenseNet', arch=d)),
}
SOURCE_FAMILIES = {
    'mmdet': ('resnet', 'resnet_v1d', 'resnext', 'resnest', 'res2net'),
    'mmseg': ('resnet', 'resnet_v1c', 'resnet_v1d', 'resnext', 'resnest'),
    'mmpretrain': ('resnet', 'resnet_v1c', 'resnet_v1d', 'resnext', 'resnest', 'res2net',
                   'densenet'),
}


def split_backbone(state_dict: dict):
    """(backbone keys without `backbone.`, dropped keys) of a whole-model state_dict; a bare
    backbone state_dict (no `backbone.` key) passes through."""
    if not any(k.startswith('backbone.') for k in state_dict):
        return dict(state_dict), []
    kept = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    return kept, [k for k in state_dict if not k.startswith('backbone.')]


def parse_name(source: str, name: str):
    """(family, backbone cfg) of a MODEL name, or a ValueError listing the names allowed."""
    families = SOURCE_FAMILIES[source]
    for family in families:
        pattern, _, depths, make = FAMILIES[family]
        m = re.fullmatch(pattern, name)
        if m and int(m.group(1)) in depths:
            return family, make(int(m.group(1)), *m.groups()[1:])
    allowed = '; '.join(f'{FAMILIES[f][1]} with D in {FAMILIES[f][2]}' for f in families)
    raise ValueError(f'model (the {source} backbone name) must be one of: {allowed}; '
                     f'got {name!r}')


def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        key, n = re.subn(pattern, repl, key, count=1)
        if n:
            break
    return key


_MMPRETRAIN_STEM = [  # ConvModule i = our conv 3i + norm 3i+1
    (r'^stem\.(\d)\.conv\.', lambda m: f'stem.{3 * int(m.group(1))}.'),
    (r'^stem\.(\d)\.bn\.', lambda m: f'stem.{3 * int(m.group(1)) + 1}.'),
]


def mmpretrain_resnet(state_dict: dict, avg_down: bool) -> dict:
    out = {}
    for key, value in state_dict.items():
        key = _rename(key, _MMPRETRAIN_STEM)
        m = re.match(r'(layer\d+\.0\.downsample\.)([01])\.(.*)$', key)
        # an avg-down shortcut without its pool (stride 1): shift conv/norm past our Identity
        if avg_down and m and m.group(1) + '2.weight' not in state_dict:
            key = f'{m.group(1)}{int(m.group(2)) + 1}.{m.group(3)}'
        out[key] = value
    return out


def mmpretrain_densenet(state_dict: dict) -> dict:
    # default: no stage at all (not a DenseNet checkpoint): the fit check in convert() says so
    last = max((int(m.group(1)) for m in (re.match(r'stages\.(\d+)\.', k) for k in state_dict)
                if m), default=0)
    rules = [
        (r'^stem\.0\.', 'conv0.'),
        (r'^stem\.1\.', 'norm0.'),
        (r'^stages\.(\d+)\.block\.(\d+)\.',
         lambda m: f'stage{int(m.group(1)) + 1}.block.denselayer{int(m.group(2)) + 1}.'),
        (rf'^transitions\.{last}\.0\.', f'stage{last + 1}.norm.'),  # final norm (+ act)
        (r'^transitions\.(\d+)\.', lambda m: f'stage{int(m.group(1)) + 2}.transition.'),
    ]
    return {_rename(k, rules): v for k, v in state_dict.items()}


def infer_from_weights(cfg: dict, state_dict: dict, source: str):
    """Set the options the weights determine (in our key names)."""
    if 'stem.6.weight' in state_dict:  # deep stem: its width differs across codebases' defaults
        cfg['stem_channels'] = state_dict['stem.6.weight'].shape[0]
    if cfg['type'] == 'mmresfamily.Res2Net':
        cfg['deep_stem'] = 'stem.0.weight' in state_dict
        cfg['avg_down'] = any(re.match(r'layer\d+\.0\.downsample\.2\.', k) for k in state_dict)
        cfg['stride1_pool'] = source != 'mmdet'


def convert_openmmlab(source: str, model_name: str, state_dict: dict):
    family, cfg = parse_name(source, model_name)
    state_dict, dropped = split_backbone(state_dict)
    if source == 'mmpretrain':
        if family == 'densenet':
            state_dict = mmpretrain_densenet(state_dict)
        else:
            state_dict = mmpretrain_resnet(state_dict, family in ('resnet_v1d', 'resnest'))
    infer_from_weights(cfg, state_dict, source)
    return state_dict, cfg, dropped


for _source in SOURCE_FAMILIES:
    register_converter(_source)(partial(convert_openmmlab, _source))
