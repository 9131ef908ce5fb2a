"""`python -m mmresfamily export CONFIG` for whole models: an mmseg segmentor's logits at the input
size and an mmdet detector's raw head outputs (single-stage: bbox_head; two-stage: rpn_head) to
ONNX, run by onnxruntime at other batch and image sizes than the exported ones and compared with
eager; whole checkpoints are loaded; what cannot be exported is refused with exit code 2."""
import json
import re
from pathlib import Path

import onnxruntime
import pytest
import torch
import torch.nn as nn

from mmresfamily.cli import main as cli_main
from mmresfamily.export import tool
from mmresfamily.export.whole import build_whole
from mmresfamily.testing import randomize_, relative_max_diff

ROOT = Path(__file__).resolve().parents[1]
SEGMENTOR = ROOT / 'configs/quickstart/fpn_r18_quickstart-seg.py'
PSPNET = ROOT / 'configs/mmseg/resnetv1c/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'
SHAPE = (64, 96)


def export(*args):
    return cli_main(['export', *[str(a) for a in args]])


def assert_checked_at_other_sizes(report, names):
    assert report['ok'] and report['exporter'] == 'dynamo' and report['outputs'] == names
    assert report['export_input_shape'] == [2, 3, *SHAPE]
    shapes = [c['input_shape'] for c in report['checks']]
    assert len(shapes) == 2 and all(s[0] != 2 and s[2:] != list(SHAPE) for s in shapes)
    for check in report['checks']:
        assert check['error'] is None and [o['name'] for o in check['outputs']] == names
        assert all(o['ok'] and o['relative_error'] <= 1e-4 and o['shape'] == o['got_shape']
                   for o in check['outputs'])


@pytest.mark.slow
def test_segmentor_logits_at_the_input_size(tmp_path):
    # FPNHead upsamples with mmseg's Upsample: a dynamic file keeps its sizes symbolic
    out = tmp_path / 'seg.onnx'
    export(SEGMENTOR, '--format', 'onnx', '--dynamic', '--shape', *SHAPE, '--out', out)
    report = json.loads((tmp_path / 'seg.onnx.json').read_text())
    assert_checked_at_other_sizes(report, ['seg_logits'])
    assert report['whole_model']['scope'] == 'mmseg'
    assert report['backbone_cfg']['type'] == 'mmresfamily.ResNet'
    for check in report['checks']:
        n, _, h, w = check['input_shape']
        assert check['outputs'][0]['shape'] == [n, 11, h, w]  # 11 classes, input size


@pytest.mark.slow
@pytest.mark.parametrize('config,head', [
    (ROOT / 'configs/coco_transfer/retinanet_r18_fpn_quickstart.py', 'bbox_head'),
    (ROOT / 'configs/quickstart/faster-rcnn_r18_fpn_quickstart.py', 'rpn_head'),
])
def test_detector_head_outputs_with_a_whole_checkpoint(tmp_path, config, head):
    _, _, cfg = tool.resolve_target(config)
    reference = build_whole(cfg, SHAPE)
    randomize_(reference.detector, seed=3).eval()
    torch.save({'state_dict': reference.detector.state_dict()}, tmp_path / 'detector.pth')
    out = tmp_path / 'det.onnx'
    report = export(config, '--format', 'onnx', '--dynamic', '--shape', *SHAPE, '--checkpoint',
                    tmp_path / 'detector.pth', '--out', out)
    levels = range(5)  # FPN levels of these configs
    assert_checked_at_other_sizes(report, [f'{name}_{level}' for name in ('cls_scores',
                                           'bbox_preds') for level in levels])
    assert head in report['whole_model']['part']
    # the file computes the checkpoint's outputs (not those of a fresh initialisation)
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    x = torch.randn(1, 3, 96, 128)
    got = session.run(None, {'input': x.numpy()})
    with torch.no_grad():
        expected = reference(x)
    assert len(got) == len(expected) == 10
    assert max(relative_max_diff(torch.from_numpy(g), e) for g, e in zip(got, expected)) <= 1e-4


def test_stock_config_builds_without_weights_files_or_syncbn():
    _, backbone, cfg = tool.resolve_target(PSPNET)
    assert backbone['init_cfg']['type'] == 'Pretrained' and backbone['norm_cfg']['type'] == 'SyncBN'
    model = build_whole(cfg, SHAPE)  # no download: the Pretrained init_cfg is off
    assert not model.segmentor.backbone.loads_pretrained
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(isinstance(m, nn.SyncBatchNorm) for m in norms)


NECK_ONLY = ("default_scope = 'mmdet'\n"
             "model = dict(type='FPN', in_channels=[8, 16], out_channels=8, num_outs=2)\n")


@pytest.mark.parametrize('content,flags,message', [
    (NECK_ONLY, [], r'FPN \(mmdet\) is neither a backbone nor an exportable whole model'),
    (f"_base_ = ['{SEGMENTOR}']\n", ['--deploy'], r'--deploy folds BatchNorm in backbones only'),
    # PSPNet's pyramid pooling
    (f"_base_ = ['{PSPNET}']\n", ['--dynamic'],
     r'dynamic sizes: segmentor\.decode_head\.psp_modules\.1\.0, segmentor\.decode_head\.'
     r'psp_modules\.2\.0, segmentor\.decode_head\.psp_modules\.3\.0 pool to fixed output sizes'),
])
def test_refuses_what_it_cannot_export(tmp_path, capsys, content, flags, message):
    config = tmp_path / 'model.py'
    config.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        export(config, '--format', 'onnx', *flags, '--out', tmp_path / 'model.onnx')
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / 'model.onnx').exists()


def test_cfg_options_change_the_config_and_only_configs(tmp_path, capsys):
    _, backbone, _ = tool.resolve_target(SEGMENTOR, {'model.backbone.depth': 34})
    assert backbone['depth'] == 34
    with pytest.raises(SystemExit) as exit_info:
        export('resnet18', '--format', 'onnx', '--cfg-options', 'model.depth=34')
    assert exit_info.value.code == 2
    assert '--cfg-options changes config files; resnet18 is a model-table name' in \
        capsys.readouterr().err
