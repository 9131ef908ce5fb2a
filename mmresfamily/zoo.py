"""The model table: every named model, its backbone config and every weight source we know.

One row per model. Configs (tools/make_configs.py), the weight URIs (`mmrf://NAME`,
mmresfamily.weights), the command line (`python -m mmresfamily list|info|fetch`), the benchmark's
default list, the summary tool, the metafiles and the tests read it, so a new model is one row.

Figures are the ones their sources publish, each with where it comes from:
- `Model.params_m / gmacs / top1`: the architecture as published (1000-class head, 224x224),
  citing the paper's or the toolbox's README;
- `Source.top1`: that release's own ImageNet-1k top-1 (torchvision's weights metadata, timm's
  results/results-imagenet.csv at the cfg's input size, or the authors' README).
"""
import functools
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

SCHEMES = ('timm', 'torchvision', 'official')
TIMM_RESULTS = 'timm results/results-imagenet.csv (pytorch-image-models aa4b585)'
TV_META = 'torchvision 0.29 weights metadata'
HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.[a-z]+$')


@dataclass(frozen=True)
class Source:
    """One release of weights for a model.

    scheme / ref: `timm` + hub id (`resnet50.a1_in1k`), `torchvision` + mmengine's torchvision
    name (`resnet50`), `official` + the release name (the row's name).
    convert: (converter source, converter model name) turning the file into our layout.
    filename: the file's name in caches and in `$MMRF_WEIGHTS`; a torch-hub style name carries
    the first hex digits of its sha256 (`resnet50-0676ba61.pth`), which is then verified.
    url: where a program can download it; None when only a person can (see `manual`).
    """
    scheme: str
    ref: str
    convert: Tuple[str, str]
    filename: str
    top1: Optional[float]
    top1_cite: str
    license: str
    url: Optional[str] = None
    manual: Optional[str] = None

    @property
    def uri(self) -> str:
        return f'{self.scheme}://{self.ref}'

    @property
    def sha256_prefix(self) -> Optional[str]:
        match = HASH_IN_NAME.search(self.filename)
        return match.group(1) if match else None


@dataclass(frozen=True)
class Model:
    name: str
    backbone: dict  # `type` without the scope, and the arguments
    params_m: Optional[float]
    gmacs: Optional[float]
    top1: Optional[float]
    cite: str
    sources: Tuple[Source, ...] = field(default_factory=tuple)

    @property
    def family(self) -> str:
        return self.backbone['type']

    @property
    def backbone_cfg(self) -> dict:
        return dict(self.backbone, type='mmresfamily.' + self.backbone['type'])

    @property
    def default_source(self) -> Optional[Source]:
        return self.sources[0] if self.sources else None

    def source(self, scheme: str) -> Source:
        for source in self.sources:
            if source.scheme == scheme:
                return source
        have = ', '.join(s.scheme for s in self.sources) or 'none'
        raise KeyError(f'model {self.name!r} has no {scheme} weights (it has: {have})')


def timm(ref, top1, license='apache-2.0'):
    return Source('timm', ref, ('timm', ref.split('.')[0]), f'{ref}.safetensors', top1,
                  TIMM_RESULTS, license, url=f'https://huggingface.co/timm/{ref}')


def torchvision(ref, filename, top1):
    return Source('torchvision', ref, ('torchvision', ref), filename, top1, TV_META,
                  'BSD-3-Clause', url=f'https://download.pytorch.org/models/{filename}')


def official(ref, convert, filename, top1, cite, license, url=None, manual=None):
    return Source('official', ref, ('official', convert), filename, top1, cite, license, url,
                  manual)


RESNEST_URL = 'https://github.com/zhanghang1989/ResNeSt/releases/download/weights_step1/'
RESNEST_README = 'ResNeSt README (zhanghang1989/ResNeSt)'
RES2NET_URL = 'https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/'
RES2NET_README = 'Res2Net-PretrainedModels README'
HARDNET_URL = 'https://ping-chao.com/hardnet/'
HARDNET_README = 'PingoLH/Pytorch-HarDNet README'
REDNET_README = 'd-li14/involution README'
REDNET_MANUAL = ('the ImageNet table of https://github.com/d-li14/involution (OneDrive / Baidu '
                 'links, no programmatic download)')
MMPRETRAIN = 'mmpretrain model zoo README'


def resnest(depth, filename, top1, timm_ref, timm_top1):
    return Model(f'resnest{depth}', dict(type='ResNeSt', depth=depth), *ARCH[f'resnest{depth}'],
                 RESNEST_README, (
                     official(f'resnest{depth}', f'resnest{depth}', filename, top1,
                              RESNEST_README, 'Apache-2.0', url=RESNEST_URL + filename),
                     timm(timm_ref, timm_top1)))


def rednet(depth):
    return Model(f'rednet{depth}', dict(type='RedNet', depth=depth), *ARCH[f'rednet{depth}'],
                 REDNET_README, (
                     official(f'rednet{depth}', f'rednet{depth}', f'rednet{depth}.pth',
                              ARCH[f'rednet{depth}'][2], REDNET_README, 'MIT',
                              manual=REDNET_MANUAL), ))


# published (params M with a 1000-class head, GMACs at 224, top-1): shared/REFERENCE.md sources
ARCH = {
    'resnet18': (11.69, 1.82, 69.90), 'resnet34': (21.80, 3.68, 73.62),
    'resnet50': (25.56, 4.12, 76.55), 'resnet101': (44.55, 7.85, 77.97),
    'resnet152': (60.19, 11.58, 78.48), 'resnet50_v1c': (25.58, 4.36, 77.01),
    'resnet50_v1d': (25.58, 4.36, 77.54), 'resnext50_32x4d': (25.03, 4.27, 77.90),
    'resnext101_32x4d': (44.18, 8.03, 78.61),
    'resnest50': (27.48, 5.40, 81.03), 'resnest101': (48.28, None, 82.83),
    'resnest200': (70.20, None, 83.84), 'resnest269': (110.93, None, 84.54),
    'res2net50_26w_4s': (25.70, 4.2, 77.99), 'res2net101_26w_4s': (45.21, 8.1, 79.19),
    'res2net50_v1b': (25.72, 4.5, 80.27),
    'densenet121': (7.98, 2.88, 74.96), 'densenet169': (14.15, 3.42, 76.08),
    'densenet201': (20.01, 4.37, 77.32), 'densenet161': (28.68, 7.82, 77.61),
    'dpn68': (12.61, 2.5, 76.43), 'dpn92': (37.67, 6.5, 79.27), 'dpn98': (61.57, 11.7, 79.85),
    'dpn131': (79.25, 16.0, 80.07),
    'hardnet68': (17.6, 4.3, 76.5), 'hardnet85': (36.7, 9.1, 78.0),
    'hardnet39ds': (3.5, 0.44, 72.1), 'hardnet68ds': (4.2, 0.8, 74.3),
    'rednet26': (9.23, 1.73, 75.96), 'rednet38': (12.39, 2.22, 77.48),
    'rednet50': (15.54, 2.71, 78.35), 'rednet101': (25.65, 4.74, 78.92),
    'rednet152': (33.99, 6.79, 79.12),
}
NONE = (None, None, None)

MODELS: Dict[str, Model] = {m.name: m for m in [
    Model('resnet18', dict(type='ResNet', depth=18), *ARCH['resnet18'], MMPRETRAIN, (
        torchvision('resnet18', 'resnet18-f37072fd.pth', 69.758),
        timm('resnet18.a1_in1k', 71.504))),
    Model('resnet34', dict(type='ResNet', depth=34), *ARCH['resnet34'], MMPRETRAIN, (
        torchvision('resnet34', 'resnet34-b627a593.pth', 73.314),
        timm('resnet34.a1_in1k', 76.420))),
    Model('resnet50', dict(type='ResNet', depth=50), *ARCH['resnet50'], MMPRETRAIN, (
        torchvision('resnet50', 'resnet50-0676ba61.pth', 76.13),
        timm('resnet50.a1_in1k', 80.382))),
    Model('resnet101', dict(type='ResNet', depth=101), *ARCH['resnet101'], MMPRETRAIN, (
        torchvision('resnet101', 'resnet101-63fe2227.pth', 77.374),
        timm('resnet101.a1h_in1k', 81.950))),
    Model('resnet152', dict(type='ResNet', depth=152), *ARCH['resnet152'], MMPRETRAIN, (
        torchvision('resnet152', 'resnet152-394f9c45.pth', 78.312),
        timm('resnet152.a1h_in1k', 82.818))),
    Model('resnet50_v1c', dict(type='ResNetV1c', depth=50), *ARCH['resnet50_v1c'], MMPRETRAIN, (
        timm('resnet50c.gluon_in1k', 78.016), )),
    Model('resnet50_v1d', dict(type='ResNetV1d', depth=50), *ARCH['resnet50_v1d'], MMPRETRAIN, (
        timm('resnet50d.ra2_in1k', 80.546), )),
    Model('resnet50_highway', dict(type='ResNet', depth=50, highway=True), *NONE,
          'no published weights (Highway shortcuts are this library\'s option)'),
    Model('resnet50_v1c_highway', dict(type='ResNetV1c', depth=50, highway=True), *NONE,
          'no published weights (Highway shortcuts are this library\'s option)'),
    Model('preresnet50', dict(type='PreResNet', depth=50, out_norm=False), *NONE,
          'timm resnetv2_50 (no separate paper figures)', (
              timm('resnetv2_50.a1h_in1k', 80.410), )),
    Model('preresnet101', dict(type='PreResNet', depth=101, out_norm=False), *NONE,
          'timm resnetv2_101 (no separate paper figures)', (
              timm('resnetv2_101.a1h_in1k', 82.042), )),
    Model('resnext50_32x4d', dict(type='ResNeXt', depth=50, groups=32, base_width=4),
          *ARCH['resnext50_32x4d'], MMPRETRAIN, (
              torchvision('resnext50_32x4d', 'resnext50_32x4d-7cdf4587.pth', 77.618),
              timm('resnext50_32x4d.a1h_in1k', 81.140))),
    Model('resnext101_32x4d', dict(type='ResNeXt', depth=101, groups=32, base_width=4),
          *ARCH['resnext101_32x4d'], MMPRETRAIN, (timm('resnext101_32x4d.gluon_in1k', 80.336), )),
    Model('resnest14', dict(type='ResNeSt', depth=14), *NONE, 'timm resnest14d (GluonCV)', (
        timm('resnest14d.gluon_in1k', 75.516), )),
    Model('resnest26', dict(type='ResNeSt', depth=26), *NONE, 'timm resnest26d (GluonCV)', (
        timm('resnest26d.gluon_in1k', 78.476), )),
    resnest(50, 'resnest50-528c19ca.pth', 81.03, 'resnest50d.in1k', 80.958),
    resnest(101, 'resnest101-22405ba7.pth', 82.83, 'resnest101e.in1k', 82.916),
    resnest(200, 'resnest200-75117900.pth', 83.84, 'resnest200e.in1k', 83.880),
    resnest(269, 'resnest269-0cc87c48.pth', 84.54, 'resnest269e.in1k', 84.542),
    Model('res2net50_26w_4s', dict(type='Res2Net', depth=50, scales=4, base_width=26,
                                   deep_stem=False, avg_down=False),
          *ARCH['res2net50_26w_4s'], RES2NET_README, (
              official('res2net50_26w_4s', 'res2net50_26w_4s', 'res2net50_26w_4s-06e79181.pth',
                       77.99, RES2NET_README, 'unknown',
                       url=RES2NET_URL + 'res2net50_26w_4s-06e79181.pth'),
              timm('res2net50_26w_4s.in1k', 77.994, license='unknown'))),
    Model('res2net101_26w_4s', dict(type='Res2Net', depth=101, scales=4, base_width=26,
                                    deep_stem=False, avg_down=False),
          *ARCH['res2net101_26w_4s'], RES2NET_README, (
              official('res2net101_26w_4s', 'res2net101_26w_4s',
                       'res2net101_26w_4s-02a759a1.pth', 79.19, RES2NET_README, 'unknown',
                       url=RES2NET_URL + 'res2net101_26w_4s-02a759a1.pth'),
              timm('res2net101_26w_4s.in1k', 79.192, license='unknown'))),
    Model('res2net50_v1b', dict(type='Res2Net', depth=50, scales=4, base_width=26),
          *ARCH['res2net50_v1b'], RES2NET_README, (
              official('res2net50_v1b', 'res2net50_v1b_26w_4s', 'res2net50_v1b_26w_4s-3cf99910.pth',
                       80.27, RES2NET_README, 'unknown',
                       url=RES2NET_URL + 'res2net50_v1b_26w_4s-3cf99910.pth'),
              timm('res2net50d.in1k', 80.280, license='unknown'))),
    *[Model(f'densenet{d}', dict(type='DenseNet', arch=d), *ARCH[f'densenet{d}'],
            'mmpretrain densenet README', (torchvision(f'densenet{d}', f, top1), ))
      for d, f, top1 in ((121, 'densenet121-a639ec97.pth', 74.434),
                         (169, 'densenet169-b2777c0a.pth', 75.6),
                         (201, 'densenet201-c1103571.pth', 76.896),
                         (161, 'densenet161-8d451a50.pth', 77.138))],
    *[Model(f'dpn{a}', dict(type='DPN', arch=a), *ARCH.get(f'dpn{a}', NONE),
            'cypw/DPNs README' if f'dpn{a}' in ARCH else 'timm (MXNet port)',
            (timm(f'dpn{a}.mx_in1k', top1), ))
      for a, top1 in (('68', 76.304), ('68b', 77.494), ('92', 80.032), ('98', 79.664),
                      ('107', 80.166), ('131', 79.836))],
    *[Model(f'hardnet{a.lower()}', dict(type='HarDNet', arch=a), *ARCH[f'hardnet{a.lower()}'],
            HARDNET_README, (official(f'hardnet{a.lower()}', f'hardnet{a.lower()}', f,
                                      ARCH[f'hardnet{a.lower()}'][2], HARDNET_README, 'MIT',
                                      url=HARDNET_URL + f), ))
      for a, f in (('68', 'hardnet68-5d684880.pth'), ('85', 'hardnet85-a28faa00.pth'),
                   ('39DS', 'hardnet39ds-0e6c6fa9.pth'), ('68DS', 'hardnet68ds-632474d2.pth'))],
    *[rednet(d) for d in (26, 38, 50, 101, 152)],
    Model('dcdc_resnet50', dict(type='DCDCResNet', depth=50), *NONE,
          'no published weights (no code or weights were released)'),
    Model('dcdc_resnet101', dict(type='DCDCResNet', depth=101), *NONE,
          'no published weights (no code or weights were released)'),
]}


# det / seg config names -> table rows; mmseg's `r50` is ResNetV1c (its own zoo's convention),
# mmdet's is ResNet v1b
CONFIG_NAMES: Dict[str, Dict[str, str]] = {
    name: rows if isinstance(rows, dict) else dict(mmdet=rows, mmseg=rows)
    for name, rows in {
        'r50': dict(mmdet='resnet50', mmseg='resnet50_v1c'),
        'r50-v1d': 'resnet50_v1d',
        'x101-32x4d': 'resnext101_32x4d',
        's50': 'resnest50',
        'r2-50': 'res2net50_v1b',
        'prer50': 'preresnet50',
        'r50-highway': dict(mmdet='resnet50_highway', mmseg='resnet50_v1c_highway'),
        'densenet121': 'densenet121',
        'dpn92': 'dpn92',
        'hardnet68': 'hardnet68',
        'rednet50': 'rednet50',
        'dcdc-r50': 'dcdc_resnet50',
    }.items()}

# the paper behind each family (and the Highway option), for metafiles and docs
PAPERS = {
    'ResNet': ('Deep Residual Learning for Image Recognition', 'https://arxiv.org/abs/1512.03385'),
    'ResNetV1c': ('Bag of Tricks for Image Classification with Convolutional Neural Networks',
                  'https://arxiv.org/abs/1812.01187'),
    'ResNeXt': ('Aggregated Residual Transformations for Deep Neural Networks',
                'https://arxiv.org/abs/1611.05431'),
    'ResNeSt': ('ResNeSt: Split-Attention Networks', 'https://arxiv.org/abs/2004.08955'),
    'Res2Net': ('Res2Net: A New Multi-scale Backbone Architecture',
                'https://arxiv.org/abs/1904.01169'),
    'PreResNet': ('Identity Mappings in Deep Residual Networks',
                  'https://arxiv.org/abs/1603.05027'),
    'DenseNet': ('Densely Connected Convolutional Networks', 'https://arxiv.org/abs/1608.06993'),
    'DPN': ('Dual Path Networks', 'https://arxiv.org/abs/1707.01629'),
    'HarDNet': ('HarDNet: A Low Memory Traffic Network', 'https://arxiv.org/abs/1909.00948'),
    'RedNet': ('Involution: Inverting the Inherence of Convolution for Visual Recognition',
               'https://arxiv.org/abs/2103.06255'),
    'DCDCResNet': ('Dual Complementary Dynamic Convolution for Image Recognition',
                   'https://arxiv.org/abs/2211.06163'),
    'Highway': ('Highway Networks', 'https://arxiv.org/abs/1505.00387'),
}
PAPERS['ResNetV1d'] = PAPERS['ResNetV1c']


def collection(model: Model) -> str:
    """The family a model is filed under (Highway variants apart from their base)."""
    return model.family + ('-Highway' if model.backbone.get('highway') else '')


def get(name: str) -> Model:
    """The table row called `name`; a KeyError lists close names."""
    try:
        return MODELS[name]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(name, MODELS, n=5, cutoff=0.5)
        hint = f'; did you mean {", ".join(close)}?' if close else ''
        raise KeyError(f'{name!r} is not in the model table (python -m mmresfamily list)'
                       f'{hint}') from None


def families() -> Tuple[str, ...]:
    """Backbone types with at least one row, in table order."""
    return tuple(dict.fromkeys(m.family for m in MODELS.values()))


# ---- which row fits a checkpoint --------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _signature(name: str) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
    """(key, shape) of a row's backbone, counters left out (built once, on the meta device)."""
    import torch

    from .registry import MODELS as BACKBONES
    with torch.device('meta'):
        state = BACKBONES.build(MODELS[name].backbone_cfg).state_dict()
    return tuple(sorted((k, tuple(v.shape)) for k, v in state.items()
                        if not k.endswith('num_batches_tracked')))


def _signature_of(state: Mapping) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
    return tuple(sorted((k, tuple(v.shape)) for k, v in state.items()
                        if hasattr(v, 'shape') and not k.endswith('num_batches_tracked')))


def fitting(state: Mapping, limit: int = 3) -> List[str]:
    """What a state dict fits: table rows whose backbone has exactly its keys and shapes (our
    layout), or a converter of the table that turns it into one (another layout). Used by the
    errors of a checkpoint that does not fit, to say what would."""
    from .converters import CONVERTERS, load_all
    signature = _signature_of(state)
    hits = [f'mmrf://{name} ({model.backbone_cfg})' for name, model in MODELS.items()
            if _signature(name) == signature]
    load_all()
    for model in MODELS.values():
        for source in model.sources:
            if len(hits) >= limit:
                return hits
            try:
                converted = CONVERTERS[source.convert[0]](source.convert[1], dict(state))[0]
            except Exception:  # this converter does not apply to these keys
                continue
            if converted and _signature_of(converted) == _signature(model.name):
                hits.append(f'{source.scheme} layout of {model.name}: python -m mmresfamily '
                            f'convert {" ".join(source.convert)} IN OUT (or {source.uri})')
    return hits[:limit]
