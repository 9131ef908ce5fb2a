"""`python -m mmresfamily export` / tools/export.py: each format is written, run again at other
batch and image sizes and compared with eager; the JSON report says so; a failed check exits
non-zero naming the output; checkpoints, deploy and config-file targets; clear refusals."""
import hashlib
import json
import re

import onnxruntime
import pytest
import torch

from mmresfamily.cli import main as cli_main
from mmresfamily.export import tool
from mmresfamily.registry import MODELS
from mmresfamily.testing import randomize_, relative_max_diff


def export(*args):
    return cli_main(['export', *[str(a) for a in args]])


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['onnx', 'torchscript', 'pt2'])
def test_each_format_is_checked_at_other_sizes_and_reported(tmp_path, fmt):
    out = tmp_path / f'r18.{fmt}'
    report = export('resnet18', '--format', fmt, '--dynamic', '--shape', 64, 96, '--out', out)
    written = json.loads((tmp_path / f'r18.{fmt}.json').read_text())
    assert written == json.loads(json.dumps(report, default=str))
    assert written['ok'] and written['format'] == fmt and written['dynamic']
    assert written['sha256'] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert written['export_input_shape'] == [2, 3, 64, 96]
    assert written['outputs'] == ['layer1', 'layer2', 'layer3', 'layer4']
    shapes = [c['input_shape'] for c in written['checks']]
    assert len(shapes) == 2 and all(s[0] != 2 and s[2:] != [64, 96] for s in shapes)
    for check in written['checks']:
        assert [o['name'] for o in check['outputs']] == written['outputs']
        assert all(o['ok'] and o['relative_error'] <= 1e-4 and o['shape'] == o['got_shape']
                   for o in check['outputs'])
    if fmt == 'onnx':
        assert written['exporter'] == 'dynamo' and written['opset'] >= 18


def off_in_layer3(run):
    return lambda x: [o * 1.01 if i == 2 else o for i, o in enumerate(run(x))]


def fails_at_other_batch_sizes(run):  # e.g. sizes fixed inside a file exported as dynamic
    def run_or_fail(x):
        if x.shape[0] != 2:
            raise RuntimeError('invalid index found, index = 12')
        return run(x)
    return run_or_fail


@pytest.mark.parametrize('spoil,failure,first_check_ok,error', [
    (off_in_layer3, 'output layer3 at input {}: relative error 1.00e-02 > 0.0001',
     [True, True, False, True], None),
    (fails_at_other_batch_sizes, 'the file did not run at input {}: RuntimeError: invalid index '
     'found, index = 12', [False] * 4, 'RuntimeError: invalid index found, index = 12'),
])
def test_failed_parity_exits_non_zero_naming_the_output(tmp_path, monkeypatch, capsys, spoil,
                                                        failure, first_check_ok, error):
    real = tool.load_runner
    monkeypatch.setattr(tool, 'load_runner', lambda fmt, path: spoil(real(fmt, path)))
    with pytest.raises(SystemExit) as exit_info:
        export('resnet18', '--format', 'torchscript', '--shape', 64, 64, '--out',
               tmp_path / 'r18.pt')
    assert exit_info.value.code == 1
    head, *lines = capsys.readouterr().err.strip().splitlines()
    assert head == 'parity check failed:' and len(lines) == 2  # one line per check input
    for line, shape in zip(lines, ['3x3x80x96', '1x3x96x64']):
        assert line.strip().startswith(failure.format(shape))
    report = json.loads((tmp_path / 'r18.pt.json').read_text())
    assert not report['ok'] and report['checks'][0]['error'] == error
    assert [o['ok'] for o in report['checks'][0]['outputs']] == first_check_ok


@pytest.mark.slow
def test_checkpoint_is_loaded_and_deploy_folds(tmp_path):
    model = randomize_(MODELS.build(dict(type='mmresfamily.ResNet', depth=18)), seed=7).eval()
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'weights.pth')
    out = tmp_path / 'r18.onnx'
    report = export('resnet18', '--format', 'onnx', '--checkpoint', tmp_path / 'weights.pth',
                    '--deploy', '--shape', 64, 64, '--out', out)
    assert report['ok'] and report['deploy'] and not report['dynamic']
    # static export: checked at its own shape with other data
    assert [c['input_shape'] for c in report['checks']] == [[2, 3, 64, 64]]
    # the file computes the checkpoint's features (not those of a fresh initialisation)
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    x = torch.randn(2, 3, 64, 64)
    got = session.run(None, {'input': x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert len(got) == 4
    assert max(relative_max_diff(torch.from_numpy(g), e) for g, e in zip(got, expected)) <= 1e-4


@pytest.mark.slow
def test_config_file_with_a_backbone_model(tmp_path):
    config = tmp_path / 'dcn_backbone.py'
    config.write_text("model = dict(type='mmresfamily.ResNet', depth=50, out_indices=(1, 3),\n"
                      "             dcn=dict(type='DCNv2', deform_groups=1),\n"
                      "             stage_with_dcn=(False, False, True, True))\n")
    report = export(config, '--format', 'onnx', '--dynamic', '--shape', 64, 64, '--out',
                    tmp_path / 'dcn.onnx')
    assert report['ok'] and report['outputs'] == ['layer2', 'layer4']
    assert report['backbone_cfg']['dcn'] == {'type': 'DCNv2', 'deform_groups': 1}


@pytest.mark.parametrize('content,message', [
    ("model = dict(type='FasterRCNN', backbone=dict(type='mmresfamily.ResNet', depth=50))",
     # a whole detector is exported from its toolbox's config (tests/test_export_whole.py)
     r"model type 'FasterRCNN' \(its backbone: mmresfamily.ResNet\) is not an mmresfamily "
     r"backbone, and whole models are exported from configs with default_scope 'mmdet' or "
     r"'mmseg' \(got None"),
    ('model = None', r'has no `model` dict with a type'),
])
def test_refuses_what_is_not_a_backbone(tmp_path, capsys, content, message):
    config = tmp_path / 'detector.py'
    config.write_text(content + '\n')
    with pytest.raises(SystemExit) as exit_info:
        export(config, '--format', 'onnx')
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_unknown_name_and_low_opset_for_deformable_convs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export('resnet5O', '--format', 'pt2')
    assert exit_info.value.code == 2 and 'did you mean resnet50' in capsys.readouterr().err
    config = tmp_path / 'dcn.py'
    config.write_text("model = dict(type='mmresfamily.ResNet', depth=50, stage_with_dcn=(False, "
                      "False, False, True), dcn=dict(type='DCN'))\n")
    with pytest.raises(SystemExit) as exit_info:
        export(config, '--format', 'onnx', '--opset', 17, '--out', tmp_path / 'dcn.onnx')
    assert exit_info.value.code == 2
    assert 'DeformConv, which needs opset >= 19; got opset 17' in capsys.readouterr().err


def test_tools_export_is_the_same_command_line(load_tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool('export').main(['resnet5O', '--format', 'pt2'])
    assert exit_info.value.code == 2 and 'did you mean resnet50' in capsys.readouterr().err
