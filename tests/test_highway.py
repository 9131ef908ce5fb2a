"""Highway-gated shortcuts: exact limits of the gate, initial bias, zero cost when off."""
import pytest
import torch

from mmresfamily.models.backbones.resnet import Bottleneck
from mmresfamily.models.layers import HighwayGate
from mmresfamily.registry import MODELS
from mmresfamily.testing import randomize_

FAMILIES = ['ResNet', 'ResNeXt', 'ResNeSt', 'Res2Net', 'PreResNet']


def _force_gate(block, value):
    gate = block.highway_gate.conv
    torch.nn.init.zeros_(gate.weight)
    torch.nn.init.constant_(gate.bias, 1e4 if value else -1e4)  # sigmoid -> exactly 1 or 0


@torch.no_grad()
def test_gate_limits_are_exact():
    block = randomize_(Bottleneck(64, 16, highway=True)).eval()
    x = torch.randn(2, 64, 8, 8)
    _force_gate(block, 0)
    assert torch.equal(block(x), torch.relu(x))  # T = 0: only the shortcut passes (then relu)
    _force_gate(block, 1)
    assert torch.equal(block(x), torch.relu(block.residual(x)))  # T = 1: only F(x)


@torch.no_grad()
def test_gate_formula():
    gate = HighwayGate(8)
    out, identity = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    t = torch.sigmoid(gate.conv(identity))
    torch.testing.assert_close(gate(out, identity), t * out + (1 - t) * identity)


@pytest.mark.parametrize('family', FAMILIES)
def test_highway_backbones_train_and_start_near_identity(family):
    model = MODELS.build(dict(type=f'mmresfamily.{family}', depth=50, highway=True))
    model.init_weights()
    gates = [m for m in model.modules() if isinstance(m, HighwayGate)]
    assert len(gates) == sum(model.stage_blocks)
    assert all(torch.all(g.conv.bias == -2.0) for g in gates), 'negative bias survives init'
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.mean() for o in outs).backward()
    assert all(g.conv.weight.grad is not None for g in gates)


@pytest.mark.parametrize('family', FAMILIES)
def test_highway_off_costs_nothing(family):
    """Off (the default), a block has no gate: the highway model's keys less its gates'."""
    with torch.device('meta'):
        on = MODELS.build(dict(type=f'mmresfamily.{family}', depth=50, highway=True))
        off = MODELS.build(dict(type=f'mmresfamily.{family}', depth=50))
    gate_keys = {k for k in on.state_dict() if '.highway_gate.' in k}
    assert len(gate_keys) == 2 * sum(on.stage_blocks)  # each block's gate: weight and bias
    assert off.state_dict().keys() == on.state_dict().keys() - gate_keys
    assert not any(isinstance(m, HighwayGate) for m in off.modules())
