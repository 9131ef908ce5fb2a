"""int8 PT2E quantisation: every conv and linear of a classifier gets int8 weights, and Inductor's
int8 kernels compute what the converted (reference) graph says."""
import pytest
import torch
import torch.nn as nn

from mmresfamily.quantize import compile_for_cpu, int8_weight_share, quantize_pt2e, top1
from mmresfamily.registry import MODELS
from mmresfamily.testing import calibrate_norms_, relative_max_diff


class TinyClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = calibrate_norms_(MODELS.build(dict(
            type='mmresfamily.ResNet', depth=18, out_indices=(3, )))).eval()
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        return self.fc(self.backbone(x)[0].mean((2, 3)))


@pytest.fixture(scope='module')
def quantized():
    torch.manual_seed(0)
    model = TinyClassifier().eval()
    data = [torch.randn(8, 3, 32, 32) for _ in range(3)]
    return model, quantize_pt2e(model, data[0], data), data


def test_every_conv_and_linear_is_int8(quantized):
    _, q, _ = quantized
    assert int8_weight_share(q) == (21, 21)  # ResNet-18's 20 convs and the linear head


def test_calibration_is_required():
    with pytest.raises(ValueError, match='at least one calibration batch'):
        quantize_pt2e(TinyClassifier(), torch.randn(2, 3, 32, 32), [])


@pytest.mark.slow
def test_inductor_int8_kernels_match_the_reference_graph(quantized):
    model, q, data = quantized
    with torch.no_grad():
        reference = q(data[0])
        compiled = compile_for_cpu(q)(data[0])
        fp32 = model(data[0])
    # the kernels round as the q/dq graph does: far closer to it than int8 is to fp32
    assert relative_max_diff(compiled, reference) < 0.02
    assert relative_max_diff(reference, fp32) < 0.25
    labels = fp32.argmax(1)
    assert top1(lambda x: reference, [(data[0], labels)]) >= 50.0


def test_unknown_kernels_are_refused_naming_the_choices():
    from mmresfamily.quantize import fashion_mnist_row
    with pytest.raises(ValueError, match=r"kernels must be one of \('reference', 'inductor'\)"):
        fashion_mnist_row('any.py', 'any.pth', kernels='onednn')


# ---- the published tables ------------------------------------------------------------------------
def test_int8_tables_are_what_their_csv_files_say():
    """docs/quantization/*.md and their copies in docs/benchmarks.md render the measured CSVs,
    and the accuracy table has a row for every family's Fashion-MNIST classifier."""
    from mmresfamily.pretrain.table import classifier_configs, classifier_name
    from mmresfamily.quantize import accuracy_markdown, speed_markdown
    from mmresfamily.utils.csv_table import read_csv
    from mmresfamily.utils.paths import REPO_ROOT
    docs = REPO_ROOT / 'docs'
    benchmarks = (docs / 'benchmarks.md').read_text(encoding='utf-8')
    accuracy = read_csv(docs / 'quantization/fashion_mnist.csv')
    for name, table in (('fashion_mnist', accuracy_markdown(accuracy)),
                        ('speed', speed_markdown(read_csv(docs / 'quantization/speed.csv')))):
        assert table in (docs / f'quantization/{name}.md').read_text(encoding='utf-8'), name
        assert table in benchmarks, f'docs/benchmarks.md differs from quantization/{name}.csv'
    assert {r['model'] for r in accuracy} == set(map(classifier_name, classifier_configs()))
