"""Every config in configs/ builds its model, and the model runs one forward on a small input."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)


def test_configs_exist_for_every_family_and_head():
    names = {p.relative_to(ROOT / 'configs').as_posix() for p in CONFIGS}
    for family in ('resnet', 'resnetv1d', 'resnext', 'resnest', 'res2net', 'preresnet',
                   'resnet-highway', 'densenet', 'dpn', 'hardnet', 'rednet', 'dcdcresnet'):
        for prefix in ('faster-rcnn', 'mask-rcnn', 'retinanet', 'cascade-rcnn'):
            assert any(n.startswith(f'mmdet/{family}/{prefix}_') for n in names), (family, prefix)
        for head in ('pspnet', 'upernet'):
            for dataset in ('ade20k', 'cityscapes'):
                assert any(n.startswith(f'mmseg/{family}/{head}_') and dataset in n
                           for n in names), (family, head, dataset)


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


@pytest.mark.parametrize('path', CONFIGS, ids=[p.relative_to(ROOT / 'configs').as_posix()
                                               for p in CONFIGS])
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
