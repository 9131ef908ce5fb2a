"""The layers' captured-graph paths (models/layers/capture.py) compute what their eager paths do
and export with dynamic sizes: DCDC's per-sample conv as taps, involution's plain-op
aggregation (also through the legacy ONNX exporter, whose Div truncates), the inference max pool
under jit tracing in grad mode, with_cp off while capturing."""
import onnxruntime
import pytest
import torch

from mmresfamily.models.layers import Involution, MaxPool2d
from mmresfamily.models.layers.capture import checkpoints, is_capturing_graph
from mmresfamily.models.layers.dcdc import _per_sample_conv_taps, per_sample_conv
from mmresfamily.testing import relative_max_diff

DYNAMIC = torch.export.Dim.DYNAMIC


@pytest.mark.parametrize('stride,dilation,group_channels', [(1, 1, 1), (2, 1, 1), (2, 2, 4),
                                                            (1, 3, 2)])
def test_per_sample_conv_taps_equal_the_folded_conv(stride, dilation, group_channels):
    x = torch.randn(3, 8, 13, 10)
    kernels = torch.randn(3, 8 // group_channels, 3, 3)
    folded = per_sample_conv(x, kernels, stride, dilation)
    taps = _per_sample_conv_taps(x, kernels, stride, dilation)
    assert taps.shape == folded.shape
    assert relative_max_diff(taps, folded) <= 1e-5


def test_per_sample_conv_exports_with_dynamic_batch():
    class GlobalConv(torch.nn.Module):
        def forward(self, x, kernels):
            return per_sample_conv(x, kernels, 2, 1)

    x, kernels = torch.randn(2, 4, 12, 12), torch.randn(2, 4, 3, 3)
    program = torch.export.export(GlobalConv(), (x, kernels),
                                  dynamic_shapes=({0: DYNAMIC, 2: DYNAMIC, 3: DYNAMIC},
                                                  {0: DYNAMIC}))
    y, other = torch.randn(3, 4, 15, 9), torch.randn(3, 4, 3, 3)
    assert relative_max_diff(program.module()(y, other), per_sample_conv(y, other, 2, 1)) <= 1e-5


def involution(stride):
    torch.manual_seed(0)
    layer = Involution(16, kernel_size=7, stride=stride, group_channels=8)
    torch.nn.init.normal_(layer.conv2.conv.weight, std=0.1)
    return layer.eval()


@pytest.mark.parametrize('stride', [1, 2])
def test_involution_torch_export_runs_other_sizes_without_the_custom_op(stride):
    layer = involution(stride)
    program = torch.export.export(layer, (torch.randn(2, 16, 12, 12), ),
                                  dynamic_shapes=({0: DYNAMIC, 2: DYNAMIC, 3: DYNAMIC}, ))
    targets = {str(n.target) for n in program.graph.nodes if n.op == 'call_function'}
    assert not any('involution_shift_add' in t for t in targets)  # loads where it is unknown
    for shape in [(3, 16, 15, 9), (1, 16, 8, 17)]:
        y = torch.randn(shape)
        with torch.no_grad():
            assert relative_max_diff(program.module()(y), layer(y)) <= 1e-5


@pytest.mark.parametrize('stride', [1, 2])
def test_involution_legacy_onnx_export_runs_other_sizes(tmp_path, stride):
    """The phase grid's row count is one expression of the sizes (a `max` of two was frozen at
    the traced size), and ceil divisions are `(a + b - 1) // b` (`-(-a // b)` became a
    truncating Div)."""
    layer = involution(stride)
    path = tmp_path / 'involution.onnx'
    with torch.no_grad():
        torch.onnx.export(layer, (torch.randn(2, 16, 12, 12), ), str(path), dynamo=False,
                          input_names=['x'], dynamic_axes={'x': {0: 'n', 2: 'h', 3: 'w'}})
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for shape in [(1, 16, 13, 11), (3, 16, 9, 16)]:
        y = torch.randn(shape)
        got = torch.from_numpy(session.run(None, {'x': y.numpy()})[0])
        with torch.no_grad():
            assert relative_max_diff(got, layer(y)) <= 1e-5


def test_involution_symbolic_trace_records_one_call():
    graph = torch.fx.symbolic_trace(involution(2))
    calls = [n for n in graph.graph.nodes if n.op == 'call_function'
             and getattr(n.target, '__name__', '') == 'involution_shift_add']
    assert len(calls) == 1
    y = torch.randn(2, 16, 11, 10)
    with torch.no_grad():
        assert relative_max_diff(graph(y), involution(2)(y)) <= 1e-6


def test_max_pool_traces_the_same_graph_in_grad_mode():
    """Its inference shortcut depends on the grad mode: a trace must not record it."""
    pool = MaxPool2d(3, 2, 1)
    x = torch.randn(2, 4, 9, 9)
    traced = torch.jit.trace(pool, x)  # check_trace reruns in another grad mode
    assert torch.equal(traced(x), torch.nn.functional.max_pool2d(x, 3, 2, 1))


def test_checkpointing_only_eager_and_recording():
    x = torch.randn(2, 3, requires_grad=True)
    assert checkpoints(True, x) and not checkpoints(False, x)
    assert not checkpoints(True, x.detach())
    assert not is_capturing_graph(x)

    def capture(t):
        assert is_capturing_graph(t) and not checkpoints(True, t)
        return t

    torch.jit.trace(capture, x.detach(), check_trace=False)
    torch.fx.symbolic_trace(capture)
