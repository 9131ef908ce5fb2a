"""BN folding is exact for every family; channels_last inputs work; torch.compile captures."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmresfamily.deploy import fold_batchnorm
from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_features_close, randomize_

FAMILIES = [
    dict(type='ResNet', depth=18), dict(type='ResNetV1d', depth=50),
    dict(type='ResNeXt', depth=50), dict(type='ResNeSt', depth=50), dict(type='Res2Net', depth=50),
    dict(type='PreResNet', depth=50), dict(type='ResNet', depth=50, highway=True),
]
IDS = [f'{c["type"]}-{c["depth"]}{"-highway" if c.get("highway") else ""}' for c in FAMILIES]


def build(cfg):
    return randomize_(MODELS.build(dict(cfg, type='mmresfamily.' + cfg['type'])), seed=5).eval()


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
def test_fold_batchnorm_is_exact(cfg):
    model = build(cfg)
    x = torch.randn(2, 3, 64, 64)
    folded = fold_batchnorm(model, x)
    remaining = sum(isinstance(m, _BatchNorm) for m in folded.modules())
    total = sum(isinstance(m, _BatchNorm) for m in model.modules())
    assert len(folded.folded_pairs) == total - remaining > 0
    if not cfg['type'] == 'PreResNet':  # pre-activation norms follow an add: not foldable
        assert remaining <= total // 4, (remaining, total)
    y = torch.randn(1, 3, 96, 80)  # another input than the one used to find the pairs
    with torch.no_grad():
        assert_features_close(folded(y), model(y), rtol=1e-4)


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
def test_channels_last_input(cfg):
    model = build(cfg)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    assert_features_close(out, ref, rtol=1e-4)


@pytest.mark.parametrize('cfg', [FAMILIES[0], FAMILIES[3]], ids=[IDS[0], IDS[3]])
def test_torch_compile_captures_whole_graph(cfg):
    model = build(cfg)
    x = torch.randn(1, 3, 64, 64)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(model, backend='aot_eager')
    with torch.no_grad():
        assert_features_close(compiled(x), model(x), rtol=1e-5)
