"""Dense-connection families honour the mmdet options: frozen_stages, norm_eval, with_cp (same
outputs and grads, less memory kept for backward), DCN stages."""
import pytest
import torch
import torch.utils.checkpoint

from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_dcn_stages, assert_frozen_stages, assert_norm_eval

FAMILIES = [
    dict(type='mmresfamily.DenseNet', arch=121),
    dict(type='mmresfamily.DPN', arch='68'),
    dict(type='mmresfamily.HarDNet', arch='68'),
    dict(type='mmresfamily.HarDNet', arch='39DS'),
]
IDS = [f'{c["type"].split(".")[1]}-{c["arch"]}' for c in FAMILIES]


def build(cfg, **kwargs):
    return MODELS.build(dict(cfg, **kwargs))


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
@pytest.mark.parametrize('frozen', [0, 2])
def test_frozen_stages(cfg, frozen):
    assert_frozen_stages(build(cfg, frozen_stages=frozen), frozen)


@pytest.mark.parametrize('cfg', FAMILIES[:3], ids=IDS[:3])
def test_norm_eval(cfg):
    assert_norm_eval(lambda **kw: build(cfg, **kw), torch.randn(2, 3, 32, 32))


def bytes_kept_for_backward(model, x, monkeypatch):
    """Run model(x); return (bytes, checkpoint calls, outputs).

    Bytes kept for backward = distinct storages autograd saves (saved_tensors_hooks) plus the
    inputs each checkpoint keeps to recompute from, parameters and buffers excluded (they exist
    either way). Deterministic, unlike timing or process memory.
    """
    weights = {t.untyped_storage().data_ptr()
               for t in list(model.parameters()) + list(model.buffers())}
    storages, calls = {}, []

    def remember(t):
        if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in weights:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()

    original = torch.utils.checkpoint.checkpoint

    def recording_checkpoint(fn, *args, **kwargs):
        calls.append(fn)
        for a in args:
            remember(a)
        return original(fn, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', recording_checkpoint)

    def pack(t):
        remember(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outs = model(x)
    monkeypatch.undo()
    return sum(storages.values()), len(calls), outs


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
def test_with_cp_same_outputs_and_grads_less_memory(cfg, monkeypatch):
    torch.manual_seed(0)
    plain = build(cfg, norm_eval=True)  # checkpoint re-runs BN: keep its statistics fixed
    plain.init_weights()
    ckpt = build(cfg, norm_eval=True, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    results = []
    for model in (plain, ckpt):
        model.train()
        model.zero_grad()
        kept, calls, outs = bytes_kept_for_backward(model, x, monkeypatch)
        sum(o.square().mean() for o in outs).backward()
        results.append((kept, calls, [o.detach() for o in outs],
                        {n: p.grad.clone() for n, p in model.named_parameters()
                         if p.grad is not None}))
    (kept_a, calls_a, outs_a, grads_a), (kept_b, calls_b, outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-6)
    assert calls_a == 0 and calls_b > 0
    assert kept_b < 0.7 * kept_a, f'with_cp keeps {kept_b} B for backward vs {kept_a} B'


@pytest.mark.parametrize('cfg', FAMILIES, ids=IDS)
def test_dcn_stages_forward_backward(cfg):
    from mmcv.ops import ModulatedDeformConv2d
    model, dcn_layers = assert_dcn_stages(lambda **kw: build(cfg, **kw),
                                          torch.randn(2, 3, 32, 32))
    # every 3x3 conv of stages 3-4 is deformable (DPN's grouped, the DS variants' depth-wise)
    plain_3x3 = [n for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
                 and n.startswith(('stage3.', 'stage4.')) and 'conv_offset' not in n
                 and not isinstance(m, ModulatedDeformConv2d)]
    assert not plain_3x3
    if cfg['type'].endswith('DPN'):
        assert all(m.groups == 32 for m in dcn_layers.values())


@pytest.mark.parametrize('arch', ['68', '68b'])
def test_dpn_grad_and_inference_paths_agree(arch):
    # with autograd recording the block concatenates out of place (cheaper backward), without it
    # it adds into the concatenation in place: the same additions in the same order, bit for bit
    model = build(dict(type='mmresfamily.DPN', arch=arch)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        inference = model(x)
    training = model(x.requires_grad_())
    assert training[-1].grad_fn is not None
    for a, b in zip(training, inference):
        assert torch.equal(a.detach(), b)
