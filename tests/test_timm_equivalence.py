"""Same weights in, same features out: timm's ResNet core family vs ours, via the convert command
(`python -m mmresfamily convert`, which tools/convert_weights.py wraps)."""
import pytest
import timm
import torch

from mmresfamily.cli import main as cli_main
from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_features_close, randomize_, stage_outputs

CASES = ['resnet50', 'resnet50d', 'resnext50_32x4d', 'resnest50d', 'resnest101e',
         'res2net50_26w_4s', 'res2net50d', 'resnetv2_50', 'resnetv2_50d']


@pytest.mark.parametrize('name', CASES)
def test_timm_features_equal(name, tmp_path):
    ref = randomize_(timm.create_model(name, pretrained=False), seed=1).eval()
    src = tmp_path / 'timm.pth'
    dst = tmp_path / 'ours.pth'
    torch.save(ref.state_dict(), src)
    cli_main(['convert', 'timm', name, str(src), str(dst)])
    converted = torch.load(dst, weights_only=True)
    ours = MODELS.build(converted['meta']['backbone_cfg']).eval()
    ours.load_state_dict(converted['state_dict'], strict=True)

    taps = [info['module'] for info in ref.feature_info[1:]]  # the four stages
    assert [(i['num_chs'], i['reduction']) for i in ref.feature_info[1:]] == \
        [(i['num_chs'], i['reduction']) for i in ours.feature_info]
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert_features_close(ours(x), stage_outputs(ref, taps, x), rtol=1e-5)
