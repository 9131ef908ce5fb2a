"""Published parameter counts (1000-class linear head), within 0.5 %."""
import pytest
import torch

from mmresfamily.registry import MODELS
from mmresfamily.testing import params_with_head

PUBLISHED = [
    (dict(type='ResNet', depth=18), 11.69),
    (dict(type='ResNet', depth=34), 21.80),
    (dict(type='ResNet', depth=50), 25.56),
    (dict(type='ResNet', depth=101), 44.55),
    (dict(type='ResNet', depth=152), 60.19),
    (dict(type='ResNetV1d', depth=50), 25.58),
    (dict(type='ResNeXt', depth=50, groups=32, base_width=4), 25.03),
    (dict(type='ResNeXt', depth=101, groups=32, base_width=4), 44.18),
    (dict(type='ResNeSt', depth=50), 27.48),
    (dict(type='ResNeSt', depth=101), 48.28),
    (dict(type='ResNeSt', depth=200), 70.20),
    (dict(type='ResNeSt', depth=269), 110.93),
    (dict(type='Res2Net', depth=50, scales=4, base_width=26, deep_stem=False, avg_down=False),
     25.70),
    (dict(type='Res2Net', depth=101, scales=4, base_width=26, deep_stem=False, avg_down=False),
     45.21),
]


@pytest.mark.parametrize('cfg,millions', PUBLISHED,
                         ids=[f'{c["type"]}-{c["depth"]}' for c, _ in PUBLISHED])
def test_published_param_count(cfg, millions):
    with torch.device('meta'):  # sizes only: no memory, no init
        model = MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type']))
    measured = params_with_head(model) / 1e6
    assert abs(measured - millions) / millions <= 0.005, f'{measured:.3f}M vs {millions}M'
