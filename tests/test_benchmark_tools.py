"""tools/benchmark.py and tools/get_flops.py produce what they promise (no timing asserted), and
the benchmark's statistics (mmresfamily.benchmark.timing) are the ones it documents."""
import csv
from pathlib import Path

import pytest
import torch

from mmresfamily.benchmark.report import read_rows
from mmresfamily.benchmark.timing import median_interval, paired_speed_ratio, verdict

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_models_writes_tables_chart_and_ratios(tmp_path, load_tool):
    benchmark = load_tool('benchmark')
    rows = benchmark.main(['models', '--variants', 'ResNet-50', '--batch', '2', '--size', '64',
                           '--repeats', '2', '--warmup', '0', '--fold-bn', '--deploy',
                           '--with-cp', '--again', '--onnxruntime', '--threads', '1',
                           '--out-dir', str(tmp_path)])
    impls = {r['impl']: r for r in rows}
    assert set(impls) == {'ours', 'timm', 'mmdet', 'ours+fold_bn', 'ours+deploy', 'ours+with_cp',
                          'ours+again', 'ours+onnxruntime'}
    # onnxruntime runs the same graph: counted on the eager model it was exported from
    assert impls['ours+onnxruntime']['params_M'] == impls['ours']['params_M']
    assert impls['ours+onnxruntime']['GMACs'] == pytest.approx(impls['ours']['GMACs'], rel=1e-9)
    # the same architecture: parameter count and GMACs agree with timm and mmdet
    for ref in ('timm', 'mmdet'):
        assert impls[ref]['params_M'] == pytest.approx(impls['ours']['params_M'], rel=1e-9)
        assert impls[ref]['GMACs'] == pytest.approx(impls['ours']['GMACs'], rel=1e-6)
    assert impls['ours']['GMACs'] == pytest.approx(4.11 * (64 / 224)**2, rel=0.02)
    assert impls['ours+fold_bn']['params_M'] < impls['ours']['params_M']  # BN affine gone
    assert 'forward_img_s' not in impls['ours+with_cp']  # checkpointing only changes training
    for deployed in ('ours+fold_bn', 'ours+deploy', 'ours+onnxruntime'):  # inference only
        assert 'forward+backward_img_s' not in impls[deployed]
    # the A/A copy is timed beside ours but not measured for memory (it is the same model)
    assert impls['ours+again']['forward+backward_img_s'] > 0
    assert 'forward_peak_MB' not in impls['ours+again']
    for row in rows:
        for key in row:
            if key.endswith('_img_s') or key.endswith('_peak_MB'):
                assert row[key] > 0, (row['impl'], key)
    with open(tmp_path / 'benchmark.csv') as f:
        assert [r['impl'] for r in csv.DictReader(f)] == [r['impl'] for r in rows]
    # every round's time is kept (CSV included), so ratios can be paired round by round
    assert len(impls['timm']['forward_round_s']) == 2
    reread = {r['impl']: r for r in read_rows(tmp_path / 'benchmark.csv')}
    assert reread['timm']['forward_round_s'] == pytest.approx(impls['timm']['forward_round_s'],
                                                              abs=1e-6)
    text = (tmp_path / 'benchmark.md').read_text()
    assert 'Paired speed ratios' in text
    paired = next(line for line in text.splitlines()
                  if line.startswith('| ResNet-50 | ours / timm |') and '[' in line)
    assert paired.split(' | ')[2].split()[-1] in ('faster', 'slower', 'tie')
    assert '| ResNet-50 | ours / timm |' in text and '| ResNet-50 | ours+with_cp / ours |' in text
    assert '| ResNet-50 | ours+again / ours |' in text
    assert 'Command: `python tools/benchmark.py models --variants ResNet-50' in text
    assert (tmp_path / 'benchmark.png').read_bytes()[:4] == b'\x89PNG'


def test_onnxruntime_row_computes_the_eager_features():
    from mmresfamily.benchmark.models import OnnxRuntimeModel
    from mmresfamily.registry import MODELS
    from mmresfamily.testing import randomize_, relative_max_diff
    model = randomize_(MODELS.build(dict(type='mmresfamily.ResNet', depth=18))).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    got = OnnxRuntimeModel(model, x.shape)(x)
    assert len(got) == len(expected) == 4
    for ours, ref in zip(got, expected):
        assert relative_max_diff(torch.from_numpy(ours), ref) < 1e-5


def test_benchmark_refuses_unknown_variant(tmp_path, load_tool):
    benchmark = load_tool('benchmark')
    with pytest.raises(SystemExit, match='--variants must be among .*ResNet-50.*got .*ResNet-51'):
        benchmark.main(['models', '--variants', 'ResNet-51', '--out-dir', str(tmp_path)])


def test_get_flops_of_a_classifier_config_is_backbone_plus_head(load_tool):
    get_flops = load_tool('get_flops')
    total, params, parts = get_flops.main(
        [str(ROOT / 'configs/pretrain/resnet/resnet50_8xb32_in1k.py')])
    assert params / 1e6 == pytest.approx(25.557, abs=0.005)  # torchvision/timm ResNet-50
    by_name = {name: flops for name, flops, _ in parts}
    assert by_name['backbone'] / 1e9 == pytest.approx(4.11, abs=0.01)
    assert by_name['head'] == 2048 * 1000  # the linear classifier's multiply-adds
    assert total == sum(by_name.values())


def test_get_flops_of_a_detector_config_counts_every_part(load_tool):
    get_flops = load_tool('get_flops')
    total, params, parts = get_flops.main(
        [str(ROOT / 'configs/mmdet/resnet/retinanet_r50_fpn_1x_coco.py'), '--shape', '128', '128'])
    by_name = {name: flops for name, flops, _ in parts}
    assert set(by_name) == {'backbone', 'neck', 'bbox_head'}
    assert all(v > 0 for v in by_name.values())
    assert by_name['backbone'] / 1e9 == pytest.approx(4.11 * (128 / 224)**2, rel=0.02)
    assert total == sum(by_name.values())
    with pytest.raises(SystemExit):
        get_flops.main([str(ROOT / 'configs/mmdet/resnet/retinanet_r50_fpn_1x_coco.py'),
                        '--shape', '16', '16'])


@pytest.mark.parametrize('n', [1, 5, 6, 9, 11, 15, 40])
def test_median_interval_is_the_binomial_order_statistic_interval(n):
    binom = pytest.importorskip('scipy.stats').binom
    values = [float(v) for v in range(n, 0, -1)]  # unsorted on purpose
    median, low, high, coverage = median_interval(values)
    assert median == (n + 1) / 2
    # the reference: the largest k with 1 - 2 P(B <= k - 1) >= 95 % (k = 1 if none)
    ks = [k for k in range(1, n // 2 + 1) if 1 - 2 * binom.cdf(k - 1, n, 0.5) >= 0.95] or [1]
    k = max(ks)
    assert (low, high) == (k, n + 1 - k)
    assert coverage == pytest.approx(1 - 2 * binom.cdf(k - 1, n, 0.5))


def test_paired_speed_ratio_and_verdict():
    ours = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]  # the machine's speed drifts between rounds
    median, low, high, _ = paired_speed_ratio(ours, [1.1 * t for t in ours])
    assert median == low == high == pytest.approx(1.1)  # pairing removes the drift
    assert verdict(low, high) == 'faster'
    assert verdict(0.97, 1.02) == 'tie' and verdict(0.9, 0.99) == 'slower'
