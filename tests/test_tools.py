"""The tools run as a user runs them: tools/summary.py, tools/convert_weights.py and
tools/pretrain_fashion_mnist.py as subprocesses, every tool's `-h`; and our tests are not the
`tests` package mmseg installs."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TOOLS = sorted(p.stem for p in (ROOT / 'tools').glob('*.py'))


def run_tool(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT)


def test_summary_prints_the_table_rows_of_a_family(tmp_path):
    result = run_tool('tools/summary.py', '--family', 'ResNet', '--size', '64',
                      '--csv', tmp_path / 'out.csv')
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / 'out.csv')))
    assert [r['name'] for r in rows] == ['resnet18', 'resnet34', 'resnet50', 'resnet101',
                                         'resnet152', 'resnet50_highway']
    resnet50 = rows[2]
    assert resnet50['measured_params_m'] == '25.56' == resnet50['params_m']  # as published
    assert resnet50['outputs'] == '4:256 8:512 16:1024 32:2048'


def test_convert_rejects_unknown_model_and_missing_file(tmp_path):
    src = tmp_path / 'in.pth'
    torch.save({'conv1.weight': torch.zeros(1)}, src)
    result = run_tool('tools/convert_weights.py', 'timm', 'vit_base', src, tmp_path / 'o.pth')
    assert result.returncode != 0 and "timm model 'vit_base' is not one this converter knows" in \
        result.stderr
    result = run_tool('tools/convert_weights.py', 'timm', 'resnet50', tmp_path / 'missing.pth',
                      tmp_path / 'o.pth')
    assert result.returncode != 0 and 'input checkpoint not found' in result.stderr


def test_our_tests_are_not_a_package():
    """mmseg's wheel installs a top-level `tests` package; ours must never be imported as it."""
    assert not (ROOT / 'tests' / '__init__.py').exists()
    assert 'tests' not in sys.modules or not str(getattr(sys.modules['tests'], '__file__', '')) \
        .startswith(str(ROOT))


@pytest.mark.slow
def test_pretrain_fashion_mnist_table_runs_and_resumes(tmp_path):
    """tools/pretrain_fashion_mnist.py: a real (tiny) run per config, a table row each, and a
    rerun skips finished rows."""
    configs = [str(ROOT / 'configs/pretrain/fashion-mnist/hardnet39ds_fashion-mnist.py')]
    argv = [sys.executable, str(ROOT / 'tools/pretrain_fashion_mnist.py'), '--configs', *configs,
            '--work-dir', str(tmp_path / 'wd'), '--out', str(tmp_path / 'table'),
            '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'train_dataloader.dataset.num_samples=64', 'val_dataloader.dataset.num_samples=32']
    subprocess.run(argv, check=True, capture_output=True)
    rows = list(csv.DictReader(open(tmp_path / 'table.csv')))
    assert [r['model'] for r in rows] == ['hardnet39ds']
    assert rows[0]['iters'] == '2' and 0 <= float(rows[0]['top1']) <= 100
    assert 'HarDNet(arch=' in rows[0]['backbone'] and float(rows[0]['params_M']) > 0
    assert '| hardnet39ds |' in (tmp_path / 'table.md').read_text()
    again = subprocess.run(argv, check=True, capture_output=True, text=True)
    assert 'skipped' in again.stdout and 'training' not in again.stdout


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_is_a_command_line_over_the_package(tool, load_tool, capsys):
    """tools/TOOL.py imports the installed package (no path set-up of its own) and `-h`
    describes its command line."""
    assert 'sys.path' not in (ROOT / 'tools' / f'{tool}.py').read_text()
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).main(['-h'])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith('usage:')

