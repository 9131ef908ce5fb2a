"""The capability checks behind docs/capabilities.md: one function per capability.

A check takes a model row (`capabilities.Row`) and returns the measured figure (the largest
relative error against eager for the parity checks, None for pass/fail contracts), or raises
with the reason. Every export path is checked the same way: captured at EXPORT_INPUT, then run
at CHECK_INPUTS -- other batch sizes and image sizes than the captured one -- and compared with
the eager model output by output: max |a - b| / max |b| <= RTOL.
"""
import functools
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..testing import (
    assert_frozen_stages,
    assert_with_cp_equivalent,
    computes_dynamic_kernels,
    default_init_calibrated_,
    randomize_,
)
from .formats import (
    as_list,
    compare_outputs,
    export_onnx,
    export_program,
    first_line,
    load_runner,
    our_file_named,
    output_names,
    trace,
)

RTOL = 1e-4
EXPORT_INPUT = (2, 3, 64, 64)
CHECK_INPUTS = ((3, 3, 96, 80), (1, 3, 64, 96))  # batch 1: split attention's dynamic batch


class CapabilityError(AssertionError):
    """A capability check that did not pass, with the reason."""


# ---- the model of a row, as every check builds it ---------------------------------------------
def build(row, **overrides) -> nn.Module:
    """The row's backbone with non-trivial weights and BN statistics (eval mode)."""
    from ..registry import MODELS
    model = MODELS.build(dict(row.cfg, **overrides))
    if computes_dynamic_kernels(model):  # they multiply features: see default_init_calibrated_
        return default_init_calibrated_(model, seed=1)
    return randomize_(model, seed=1).eval()


def inputs(shapes=CHECK_INPUTS, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in shapes]


@functools.lru_cache(maxsize=2)
def reference(row):
    """(eval model, check inputs, eager outputs per input): shared by the export checks."""
    model = build(row)
    xs = inputs()
    with torch.no_grad():
        expected = [as_list(model(x)) for x in xs]
    return model, xs, expected


@functools.lru_cache(maxsize=1)
def program(row):
    """The row's torch.export program with dynamic batch, H and W (ONNX exports it too)."""
    model = reference(row)[0]
    return export_program(model, inputs([EXPORT_INPUT], seed=1)[0], dynamic=True)


def parity(row, run) -> float:
    """Run `run(x)` at every check input against eager; the largest relative error."""
    model, xs, expected = reference(row)
    names, worst = output_names(model), 0.0
    for x, ref in zip(xs, expected):
        with torch.no_grad():
            got = as_list(run(x))
        for result in compare_outputs(got, ref, names, RTOL):
            shape = 'x'.join(map(str, x.shape))
            if not result['ok']:
                raise CapabilityError(f'output {result["name"]} at input {shape}: relative error '
                                      f'{result["relative_error"]:.1e} > {RTOL:g} (shape '
                                      f'{result["got_shape"]} vs {result["shape"]})')
            worst = max(worst, result['relative_error'])
    return worst


# ---- export paths ---------------------------------------------------------------------------
def check_onnx(row) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'model.onnx'
        export_onnx(reference(row)[0], inputs([EXPORT_INPUT], seed=1)[0], path,
                    program=program(row))
        return parity(row, load_runner('onnx', path))


def check_torchscript_trace(row) -> float:
    traced = trace(reference(row)[0], inputs([EXPORT_INPUT], seed=1)[0])
    return parity(row, traced)


def check_torchscript_script(row) -> float:
    """The backbones keep the toolboxes' Python forward: stages and norms reached by name (the
    names are mmdet's / timm's checkpoint keys), torch.utils.checkpoint, input checks that
    raise with the shapes. TorchScript compiles none of that; rewriting every family into its
    subset is not done because torch 2.14 deprecates torch.jit and tracing gives the
    TorchScript file. A refusal is reported with that reason and torch's first complaint; a
    row that scripts is checked for parity like every other path."""
    model = reference(row)[0]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # torch.jit.script is deprecated
        try:
            scripted = torch.jit.script(model)
        except (torch.jit.frontend.NotSupportedError, RuntimeError) as err:
            raise CapabilityError(
                'not written in TorchScript\'s subset (stages and norms reached by name for '
                'mmdet/timm checkpoint keys, torch.utils.checkpoint, input checks); torch '
                f'2.14 deprecates torch.jit, trace gives the TorchScript file; first refusal: '
                f'{first_line(err, limit=80).rstrip(":")}{our_file_named(err)}') from err
    return parity(row, scripted)


def check_torch_export(row) -> float:
    return parity(row, program(row).module())


def check_fx(row) -> float:
    return parity(row, torch.fx.symbolic_trace(reference(row)[0]))


def check_compile(row) -> float:
    """fullgraph=True: a graph break fails. AOTAutograd's graph run without Inductor's code
    generation (30-60 s per model on 2 cores; tests/test_deploy.py compiles with Inductor)."""
    torch._dynamo.reset()
    return parity(row, torch.compile(reference(row)[0], fullgraph=True, backend='aot_eager'))


# ---- the contract every backbone keeps ----------------------------------------------------------
def check_outputs(row):
    """`out_channels` / `feature_info` describe the real outputs (channels, reductions)."""
    model = build(row)
    x = inputs([EXPORT_INPUT])[0]
    with torch.no_grad():
        outs = as_list(model(x))
    sizes = model.feature_sizes(x.shape[-1])
    expected = [(info['num_chs'], sizes[i]) for i, info in
                ((i, model.feature_info[i]) for i in model.out_indices)]
    got = [(o.shape[1], o.shape[-1]) for o in outs]
    if got != expected or list(model.out_channels) != [c for c, _ in got]:
        raise CapabilityError(f'outputs (channels, size) {got} but feature_info says {expected} '
                              f'and out_channels {model.out_channels}')


def check_frozen_stages(row):
    assert_frozen_stages(build(row, frozen_stages=1), 1)


def check_norm_eval(row):
    model = build(row, norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    before = [m.running_mean.clone() for m in norms]
    model(inputs([EXPORT_INPUT])[0])
    if not norms or any(m.training for m in norms) or not all(
            torch.equal(b, m.running_mean) for b, m in zip(before, norms)):
        raise CapabilityError('norm_eval=True left BatchNorm layers training or updating')


def check_with_cp(row):
    assert_with_cp_equivalent(lambda **kw: build(row, **kw).train(), inputs([(2, 3, 32, 32)])[0])


# one training step of the with_cp model on DDP_WORLD gloo processes, each on its share of the
# batch, against one process on the whole batch: DDP averages the gradients of per-process
# means, which is the gradient of the whole batch's mean (BN statistics frozen: norm_eval)
DDP_WORLD = 2
DDP_INPUT = (4, 3, 64, 64)


def _with_cp_train_model(row) -> nn.Module:
    return build(row, with_cp=True, norm_eval=True).train()


def _mean_loss(outs):
    return sum(o.square().mean() for o in outs)


def _ddp_step(rank, row, x, init_file, grads_file, threads):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    # the parent's thread count: another one changes oneDNN's summation order, which flips
    # near-zero ReLUs (4e-3 on a ResNetV1c gradient), a difference that is not DDP's
    torch.set_num_threads(threads)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=DDP_WORLD)
    try:
        # unused parameters: stages past the last of out_indices are built but not run
        model = DistributedDataParallel(_with_cp_train_model(row), find_unused_parameters=True)
        _mean_loss(model(x.chunk(DDP_WORLD)[rank])).backward()
        if rank == 0:
            torch.save({n: p.grad for n, p in model.module.named_parameters()
                        if p.grad is not None}, grads_file)
    finally:
        dist.destroy_process_group()


def check_with_cp_ddp(row) -> float:
    x = inputs([DDP_INPUT], seed=2)[0]
    with tempfile.TemporaryDirectory() as tmp:
        grads_file = Path(tmp) / 'grads.pt'
        torch.multiprocessing.spawn(_ddp_step, nprocs=DDP_WORLD,
                                    args=(row, x, str(Path(tmp) / 'init'), str(grads_file),
                                          torch.get_num_threads()))
        got = torch.load(grads_file, weights_only=True)
    model = _with_cp_train_model(row)
    _mean_loss(model(x)).backward()
    expected = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    if got.keys() != expected.keys() or not expected:
        raise CapabilityError(f'DDP gave gradients for {len(got)} parameters, one process for '
                              f'{len(expected)}')
    # relative to the tensor's own largest gradient, floored at a share of the model's largest:
    # a gradient that nearly cancels out (a bias's sum) may differ by summation order alone
    floor = 1e-2 * max(g.abs().max().item() for g in expected.values())
    errors = {name: (got[name] - g).abs().max().item() / max(g.abs().max().item(), floor)
              for name, g in expected.items()}
    worst = max(errors, key=errors.get)
    if errors[worst] > RTOL:
        raise CapabilityError(f'gradient of {worst}: relative error {errors[worst]:.1e} > '
                              f'{RTOL:g} between {DDP_WORLD}-process DDP and one process')
    return errors[worst]


def check_sync_bn(row):
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(build(row, norm_cfg=dict(type='SyncBN', requires_grad=True)))
    if any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
        raise CapabilityError('SyncBatchNorm left after revert_sync_batchnorm')
    model.train()(inputs([EXPORT_INPUT])[0])  # SyncBN itself refuses CPU


def check_group_norm(row):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # the fallback report, tested elsewhere
        model = build(row, norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    if not any(isinstance(m, nn.GroupNorm) for m in model.modules()):
        raise CapabilityError('norm_cfg GN built no GroupNorm')
    model.train()(inputs([(1, 3, 64, 64)])[0])  # GN: batch 1 trains


def check_channels_last(row) -> float:
    model, xs, expected = reference(row)
    model = model.to(memory_format=torch.channels_last)
    try:
        return parity(row, lambda x: model(x.contiguous(memory_format=torch.channels_last)))
    finally:
        model.to(memory_format=torch.contiguous_format)


def check_deploy(row) -> float:
    from ..deploy import optimize_for_inference
    model = reference(row)[0]
    return parity(row, optimize_for_inference(model, inputs([EXPORT_INPUT], seed=1)[0]))
