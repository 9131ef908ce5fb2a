"""Every tool answers bad input with a one-line error naming the argument or file and what is
allowed (no traceback); tools/summary.py builds every registered family."""
import csv
import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mmresfamily import zoo
from mmresfamily.registry import MODELS
from mmresfamily.testing import params_with_head

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs/quickstart/faster-rcnn_r18_fpn_quickstart.py'


@pytest.fixture
def tool_error(capsys, load_tool):
    """`tool_error(TOOL, argv)`: run tools/TOOL.py main(argv) expecting it to stop: (exit code,
    what it said)."""

    def run(tool, argv):
        with pytest.raises(SystemExit) as exit_info:
            load_tool(tool).main(argv)
        code = exit_info.value.code
        said = capsys.readouterr().err + (code if isinstance(code, str) else '')
        assert code not in (0, None), said
        assert 'Traceback' not in said
        return code, said

    return run


# ---- tools/train.py, tools/test.py: configs and --cfg-options --------------------------------
def write_broken_config(tmp_path):
    bad = tmp_path / 'broken.py'
    bad.write_text("model = dict(\n    type='FasterRCNN',\n    backbone=dict(depth=))\n")
    return bad


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_config_syntax_error_names_file_and_line(tmp_path, tool_error, tool):
    bad = write_broken_config(tmp_path)
    extra = [str(tmp_path / 'x.pth')] if tool == 'test' else []
    _, said = tool_error(tool, [str(bad), *extra, '--work-dir', str(tmp_path / 'wd')])
    assert re.search(rf'config {re.escape(str(bad))}, line 3: .*: backbone=dict\(depth=\)\)',
                     said), said


def test_syntax_error_in_a_base_config_names_the_base(tmp_path, tool_error):
    bad = write_broken_config(tmp_path)
    child = tmp_path / 'child.py'
    child.write_text(f"_base_ = ['{bad.name}']\ndefault_scope = 'mmdet'\n")
    _, said = tool_error('train', [str(child), '--work-dir', str(tmp_path / 'wd')])
    assert f'config {bad}, line 3' in said


@pytest.mark.parametrize('entry', ['train_cfg.max_iters', '=5'])
def test_cfg_options_entry_without_key_and_value_is_an_argument_error(tmp_path, tool_error, entry):
    code, said = tool_error('train', [str(CONFIG), '--cfg-options', 'a=1', entry])
    assert code == 2
    assert f"--cfg-options entries must be KEY=VALUE (e.g. train_cfg.max_iters=100); got " \
           f"{entry!r}" in said


# ---- tools/convert_weights.py ----------------------------------------------------------------
def test_convert_output_under_a_file_is_refused(tmp_path, tool_error):
    src = tmp_path / 'in.pth'
    torch.save(MODELS.build(dict(type='mmresfamily.ResNet', depth=18)).state_dict(), src)
    blocker = tmp_path / 'not_a_dir'
    blocker.write_text('')
    for out in (blocker / 'out.pth', blocker / 'sub' / 'out.pth'):
        code, said = tool_error('convert_weights', ['torchvision', 'resnet18', str(src),
                                                            str(out)])
        assert code == 2 and f'output {out}: {blocker} is a file, not a directory' in said
    _, said = tool_error('convert_weights', ['torchvision', 'resnet18', str(src),
                                                     str(tmp_path)])
    assert f'output {tmp_path} is a directory' in said


# ---- tools/make_quickstart_data.py -----------------------------------------------------------
FASHION_FILES = {'train-images-idx3-ubyte.gz': (3, (6, 28, 28)),
                 'train-labels-idx1-ubyte.gz': (1, (6, )),
                 't10k-images-idx3-ubyte.gz': (3, (4, 28, 28)),
                 't10k-labels-idx1-ubyte.gz': (1, (4, ))}


def write_fashion_mnist(root, corrupt=None, how=None):
    """A tiny Fashion-MNIST in the idx format (bright random items); `corrupt` names a file to
    damage `how`: 'not gzip', 'wrong magic' or 'cut short'."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, (ndim, shape) in FASHION_FILES.items():
        data = (rng.integers(0, 10, shape) if ndim == 1 else
                rng.integers(100, 255, shape)).astype(np.uint8)
        raw = bytes((0, 0, 8, ndim)) + b''.join(d.to_bytes(4, 'big') for d in shape) + \
            data.tobytes()
        if name == corrupt and how == 'wrong magic':
            raw = b'\x00\x00\x0d' + raw[3:]
        if name == corrupt and how == 'cut short':
            raw = raw[:-10]
        packed = gzip.compress(raw)
        if name == corrupt and how == 'not gzip':
            packed = b'not gzip data'
        (root / name).write_bytes(packed)
    return root


def test_quickstart_data_from_a_valid_tiny_set(tmp_path, load_tool):
    """The control for the corrupt-file test: the same files, undamaged, work."""
    source = write_fashion_mnist(tmp_path / 'fm')
    load_tool('make_quickstart_data').main(['--fashion-mnist', str(source), '--out',
                                            str(tmp_path / 'out'), '--train', '2', '--val', '1',
                                            '--size', '32'])
    assert (tmp_path / 'out/annotations/instances_val.json').is_file()


@pytest.mark.parametrize('how,message', [
    ('not gzip', 'cannot gunzip it'),
    ('wrong magic', r'not an idx file of 3-d unsigned bytes \(starts 00 00 0d 03'),
    ('cut short', r'its header says \[4, 28, 28\] \(3136 bytes\) but 3126 bytes follow'),
])
def test_quickstart_data_names_a_corrupt_fashion_mnist_file(tmp_path, tool_error, how, message):
    source = write_fashion_mnist(tmp_path / 'fm', 't10k-images-idx3-ubyte.gz', how)
    code, said = tool_error('make_quickstart_data', [
        '--fashion-mnist', str(source), '--out', str(tmp_path / 'out')])
    assert code == 2
    assert re.search(rf'--fashion-mnist: Fashion-MNIST file {source}/t10k-images-idx3-ubyte.gz '
                     rf'is corrupt: {message}', said), said
    assert not (tmp_path / 'out').exists()  # nothing written before the check


@pytest.mark.parametrize('flag,value,allowed', [
    ('--max-items', '0', 'an integer >= 1'),
    ('--size', '4', 'an integer >= 32 (items are a fifth to a half of the canvas wide)'),
    ('--train', '-1', 'an integer >= 1'),
    ('--val', 'many', 'an integer >= 1'),
])
def test_quickstart_data_bad_numbers(tmp_path, tool_error, flag, value, allowed):
    code, said = tool_error('make_quickstart_data', ['--out', str(tmp_path / 'o'),
                                                             flag, value])
    assert code == 2 and f'argument {flag}: must be {allowed}; got {value!r}' in said


# ---- tools/benchmark.py ------------------------------------------------------------------------
@pytest.mark.parametrize('argv,message', [
    (['involution', '--group-channels', '0'],
     "argument --group-channels: must be an integer >= 1; got '0'"),
    (['involution', '--repeats', '0'], "argument --repeats: must be an integer >= 1; got '0'"),
    (['models', '--repeats', '0'], "argument --repeats: must be an integer >= 1; got '0'"),
    (['models', '--warmup', '-1'], "argument --warmup: must be an integer >= 0; got '-1'"),
    (['involution', '--channels', '64', '--group-channels', '24'],
     '--group-channels 24 must divide --channels 64'),
])
def test_benchmark_bad_numbers(tool_error, argv, message):
    _, said = tool_error('benchmark', argv)
    assert message in said


# ---- tools/summary.py (python -m mmresfamily list --measure) -----------------------------------
FIRST_OF_FAMILY = {m.family: m for m in reversed(list(zoo.MODELS.values()))}


@pytest.mark.parametrize('family', zoo.families())
def test_summary_measures_every_family(tmp_path, load_tool, family):
    model = FIRST_OF_FAMILY[family]
    out = tmp_path / 'summary.csv'
    load_tool('summary').main([model.name, '--size', '32', '--csv', str(out)])
    rows = list(csv.DictReader(open(out)))
    assert [r['name'] for r in rows] == [model.name]
    backbone = MODELS.build(model.backbone_cfg)
    assert float(rows[0]['measured_params_m']) == round(params_with_head(backbone) / 1e6, 2)
    assert rows[0]['outputs'] == ' '.join(f'{i["reduction"]}:{i["num_chs"]}'
                                          for i in backbone.feature_info)
    assert float(rows[0]['measured_gmacs']) > 0


