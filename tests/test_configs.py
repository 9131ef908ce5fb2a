"""Every config in configs/ builds its model, and the model runs one forward on a small input."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from mmresfamily.registry import MODELS as MODELS_ROOT

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)


def test_configs_exist_for_every_family_and_head():
    """Every config name of the table has each detector and each segmentor, and together they
    cover every family."""
    from mmresfamily import zoo
    names = {p.relative_to(ROOT / 'configs').as_posix() for p in CONFIGS}
    for name, rows in zoo.CONFIG_NAMES.items():
        det = f'mmdet/{zoo.collection(zoo.get(rows["mmdet"])).lower()}'
        seg = f'mmseg/{zoo.collection(zoo.get(rows["mmseg"])).lower()}'
        for prefix in ('faster-rcnn', 'mask-rcnn', 'retinanet', 'cascade-rcnn'):
            assert f'{det}/{prefix}_{name}_fpn_1x_coco.py' in names, (name, prefix)
        for head in ('pspnet', 'upernet'):
            for dataset in ('ade20k', 'cityscapes'):
                assert any(n.startswith(f'{seg}/{head}_{name}') and dataset in n
                           for n in names), (name, head, dataset)
    covered = {zoo.get(rows[t]).family for rows in zoo.CONFIG_NAMES.values() for t in rows}
    assert covered == set(zoo.families())


def _forward(cfg, model):
    scope = cfg.default_scope
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 128, 160)],
                                num_classes=10, with_mask=True)
        data = model.data_preprocessor(packed, False)
        results = model(**data, mode='predict')
        assert len(results) == 1 and 'pred_instances' in results[0]
    elif scope == 'mmseg':
        out = model(torch.randn(1, 3, 128, 128), None, mode='tensor')
        assert out.shape[:2] == (1, cfg.model.decode_head.num_classes)
    else:
        out = model(torch.randn(2, 3, 32, 32), mode='tensor')
        assert out.shape == (2, cfg.model.head.num_classes)


def heavier_twin(path) -> bool:
    """Cascade / Mask R-CNN and Cityscapes configs: the backbone and neck of a Faster R-CNN /
    ADE20K config of the same directory, which stays in the fast tier."""
    return path.name.startswith(('cascade-rcnn', 'mask-rcnn')) or 'cityscapes' in path.name


@pytest.mark.parametrize('path', [
    pytest.param(p, id=p.relative_to(ROOT / 'configs').as_posix(),
                 marks=[pytest.mark.slow] if heavier_twin(p) else []) for p in CONFIGS])
def test_config_builds_and_runs(path):
    cfg = Config.fromfile(str(path))
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    assert type(model.backbone).__module__.startswith('mmresfamily.')
    with torch.no_grad():
        _forward(cfg, model)


# ---- configs from the model table -------------------------------------------------------------
DET_SEG = sorted(p for p in CONFIGS if p.relative_to(ROOT / 'configs').parts[0] in ('mmdet',
                                                                                     'mmseg'))


def test_generated_files_match_the_model_table():
    """tools/make_configs.py --check: nothing drifted, nothing stale."""
    from mmresfamily.configgen import drift
    _, stale, drifted = drift(ROOT)
    assert sorted(stale) == []
    assert drifted == [], 'run python tools/make_configs.py'


def test_model_index_lists_every_config_and_only_existing_ones():
    import yaml
    listed = []
    for metafile in yaml.safe_load((ROOT / 'model-index.yml').read_text())['Import']:
        listed += [m['Config'] for m in yaml.safe_load((ROOT / metafile).read_text())['Models']]
    assert len(listed) == len(set(listed))
    expected = {p.relative_to(ROOT).as_posix() for p in CONFIGS
                if p.relative_to(ROOT / 'configs').parts[0] in ('mmdet', 'mmseg', 'pretrain')}
    assert set(listed) == expected
    assert all((ROOT / path).is_file() for path in listed)


@pytest.fixture(scope='module')
def det_seg_backbones():
    return {p: Config.fromfile(str(p)).model.backbone for p in DET_SEG}


@pytest.mark.parametrize('path', DET_SEG, ids=lambda p: p.name)
def test_config_name_says_its_backbone_and_the_table_gives_its_weights(path, det_seg_backbones):
    """`r50` in an mmseg config is ResNetV1c, in an mmdet one ResNet (each toolbox's own
    convention); the weights URI resolves through the table (no file needed) to weights whose
    keys and shapes are the config's backbone's."""
    from mmresfamily import weights, zoo
    from mmresfamily.configgen import config_name
    toolbox = path.relative_to(ROOT / 'configs').parts[0]
    model = zoo.get(zoo.CONFIG_NAMES[config_name(path)][toolbox])
    backbone = dict(det_seg_backbones[path])
    assert {k: backbone.get(k) for k in model.backbone_cfg} == model.backbone_cfg
    init_cfg = backbone.pop('init_cfg')
    if not model.sources:
        assert init_cfg is None
        return
    assert init_cfg == dict(type='Pretrained', checkpoint=f'mmrf://{model.name}')
    source = weights.source_for(init_cfg['checkpoint'])
    assert source is model.default_source
    with torch.device('meta'):
        built = MODELS_ROOT.build(backbone).state_dict()
    assert zoo._signature_of(built) == zoo._signature(model.name)
