"""Scoped names build from every toolbox's default scope; opt-in integrations take plain names."""
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.registry import DefaultScope

from mmresfamily.models.backbones import Res2Net, ResNeSt
from mmresfamily.registry import MODELS as OUR_MODELS


def _toolbox_models(scope):
    return __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('type_,cls', [('ResNeSt', ResNeSt), ('Res2Net', Res2Net)])
def test_scoped_name_builds_under_toolbox_scope(scope, type_, cls):
    pytest.importorskip(scope)
    registry = _toolbox_models(scope)
    # the sub-builds (norm layers, DCN, plugins) must not depend on the caller's scope
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(
            type=f'mmresfamily.{type_}', depth=50, norm_cfg=dict(type='GN', num_groups=2),
            dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, False, True, True),
            plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25), position='after_conv3',
                          stages=(False, True, False, False))]))
    assert type(model) is cls
    assert len(model(torch.randn(2, 3, 32, 32))) == 4


def test_registry_scope_and_parent():
    from mmengine.registry import MODELS as ROOT
    assert OUR_MODELS.scope == 'mmresfamily'
    assert OUR_MODELS.parent is ROOT
    assert {'ResNet', 'ResNetV1c', 'ResNetV1d', 'ResNeXt', 'ResNeSt', 'Res2Net',
            'PreResNet'} <= set(OUR_MODELS.module_dict)


@pytest.mark.subprocess
def test_scoped_name_from_fresh_process_without_importing_us():
    """mmengine imports mmresfamily.registry and its locations by itself."""
    code = textwrap.dedent('''
        from mmengine.registry import MODELS
        m = MODELS.build(dict(type='mmresfamily.ResNetV1d', depth=18))
        print(type(m).__module__)
    ''')
    out = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == 'mmresfamily.models.backbones.resnet'


@pytest.mark.subprocess
def test_mmdet_stock_config_builds_ours_and_loads_mmdet_weights():
    """The stock mmdet ResNeSt config with the opt-in import builds our backbone, and mmdet's own
    backbone state_dict for that config loads strictly."""
    pytest.importorskip('mmdet.models.backbones')
    code = textwrap.dedent('''
        import torch
        from mmengine.hub import get_config
        from mmengine.registry import init_default_scope
        from mmdet.models.backbones import ResNeSt as MMDetResNeSt
        cfg = get_config(
            'mmdet::resnest/faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py')
        cfg.custom_imports = dict(imports=['mmresfamily.integrations.mmdet'],
                                  allow_failed_imports=False)
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
        init_default_scope('mmdet')
        from mmdet.registry import MODELS
        assert cfg.model.backbone.type == 'ResNeSt'
        ours = MODELS.build(cfg.model.backbone)
        from mmresfamily.models.backbones import ResNeSt
        assert type(ours) is ResNeSt, type(ours)
        bb = dict(cfg.model.backbone); bb.pop('type')
        ref = MMDetResNeSt(**bb)
        ours.load_state_dict(ref.state_dict(), strict=True)
        detector = MODELS.build(cfg.model)
        assert type(detector.backbone) is ResNeSt
        print('OK', type(ours).__module__)
    ''')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'OK mmresfamily' in result.stdout


@pytest.mark.subprocess
def test_mmseg_integration_plain_names():
    pytest.importorskip('mmseg')
    code = textwrap.dedent('''
        import mmresfamily.integrations.mmseg
        from mmengine.registry import init_default_scope
        init_default_scope('mmseg')
        from mmseg.registry import MODELS
        m = MODELS.build(dict(type='ResNetV1c', depth=18, strides=(1, 2, 1, 1),
                              dilations=(1, 1, 2, 4), contract_dilation=True))
        print(type(m).__module__)
    ''')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == 'mmresfamily.models.backbones.resnet'
