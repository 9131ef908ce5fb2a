"""Export a backbone to a file (ONNX, TorchScript, torch.export's .pt2) and run the file again.

Every path captures the inference graph: eval mode, no autograd (`with_cp` checkpointing, a
training-memory device, is off), and the layers' eager-only shortcuts skipped
(`models/layers/capture.py`: involution's and DCDC's aggregations become plain ops, so no custom
operator is needed where the file runs; deformable convs are torchvision's `deform_conv2d`,
ONNX `DeformConv`, and need `import torchvision` to load the TorchScript / .pt2 files).

Dynamic sizes use `torch.export.Dim.DYNAMIC` for batch, height and width: named `Dim`s with
ranges make torch prove guards it cannot (the `ceil_mode=True` pooling of avg-down shortcuts
and involution), while DYNAMIC dims keep the guards as the sizes' own constraints.
"""
import contextlib
import io
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn

FORMATS = {'onnx': '.onnx', 'torchscript': '.pt', 'pt2': '.pt2'}
# ONNX DeformConv exists from opset 19; torch 2.14's exporter defaults to 20
DEFORM_CONV_OPSET = 19


class ExportError(RuntimeError):
    """A path that cannot export this model, with the reason."""


def output_names(model: nn.Module) -> List[str]:
    """The stage names of the outputs (`feature_info` in `out_indices` order): `layer1`, ...;
    a whole model's own `output_names`."""
    if getattr(model, 'output_names', None):
        return list(model.output_names)
    info, indices = getattr(model, 'feature_info', None), getattr(model, 'out_indices', None)
    if info and indices is not None:
        return [info[i]['module'] for i in indices]
    return [f'output{i}' for i in range(len(indices or ()))]


def dynamic_dims(dynamic: bool):
    """`dynamic_shapes` of the one input: batch, H and W dynamic, or None (static)."""
    if not dynamic:
        return None
    dim = torch.export.Dim.DYNAMIC
    return ({0: dim, 2: dim, 3: dim}, )


def has_deformable_convs(model: nn.Module) -> bool:
    from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    return any(isinstance(m, (DeformConv2d, ModulatedDeformConv2d)) for m in model.modules())


def fixed_size_poolings(model: nn.Module) -> List[str]:
    """Adaptive poolings to other sizes than 1x1 (e.g. PSPNet's pyramid pooling): ONNX has no
    such operator, and the exporters compute their windows for the size at export."""
    from torch.nn.modules.utils import _pair
    kinds = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    return [name for name, m in model.named_modules()
            if isinstance(m, kinds) and set(_pair(m.output_size)) != {1}]


def export_program(model: nn.Module, example: torch.Tensor, dynamic: bool = True):
    """`torch.export.export` of the inference graph (see the module doc)."""
    with torch.no_grad():
        return torch.export.export(model.eval(), (example, ), dynamic_shapes=dynamic_dims(dynamic))


def trace(model: nn.Module, example: torch.Tensor):
    """`torch.jit.trace` of the inference graph; sizes are traced, not frozen, so the result
    runs other batch and image sizes (checked by the callers, hence no trace self-check)."""
    with torch.no_grad():
        return torch.jit.trace(model.eval(), example, check_trace=False)


def export_onnx(model: nn.Module, example: torch.Tensor, path, dynamic: bool = True,
                opset: Optional[int] = None, program=None) -> dict:
    """Write `path` with torch's dynamo exporter (from `program`, an ExportedProgram of the
    model, when given), falling back to the TorchScript-based one if it fails. Returns what
    was used: exporter, opset."""
    opset = opset if opset is not None else torch.onnx._constants.ONNX_DEFAULT_OPSET
    if opset < DEFORM_CONV_OPSET and has_deformable_convs(model):
        raise ExportError(f'deformable convs export as ONNX DeformConv, which needs opset >= '
                          f'{DEFORM_CONV_OPSET}; got opset {opset}')
    pooled = fixed_size_poolings(model) if dynamic else []
    if pooled:
        raise ExportError(f'dynamic sizes: {", ".join(pooled[:3])}{", ..." if pooled[3:] else ""}'
                          f' pool to fixed output sizes, which ONNX computes with windows fixed '
                          f'at export; export at a static size (without --dynamic)')
    names = output_names(model)
    errors = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
            torch.onnx.export(program if program is not None else model.eval(), (example, ),
                              str(path), dynamo=True, opset_version=opset, external_data=False,
                              input_names=['input'], output_names=names,
                              dynamic_shapes=None if program is not None else
                              dynamic_dims(dynamic))
        return dict(exporter='dynamo', opset=opset)
    except Exception as err:  # noqa: BLE001  reported with the legacy exporter's error below
        errors.append(f'dynamo exporter: {first_line(err)}')
    try:
        axes = {name: {0: 'batch', 2: f'{name}_height', 3: f'{name}_width'}
                for name in names} if dynamic else None
        if axes is not None:
            axes['input'] = {0: 'batch', 2: 'height', 3: 'width'}
        with torch.no_grad():
            torch.onnx.export(model.eval(), (example, ), str(path), dynamo=False,
                              opset_version=min(opset, 20), input_names=['input'],
                              output_names=names, dynamic_axes=axes)
        return dict(exporter='legacy', opset=min(opset, 20))
    except Exception as err:  # noqa: BLE001
        errors.append(f'legacy exporter: {first_line(err)}')
    raise ExportError('ONNX export failed: ' + '; '.join(errors))


def export_file(fmt: str, model: nn.Module, example: torch.Tensor, path, dynamic: bool = True,
                opset: Optional[int] = None) -> dict:
    """Write `model` as `fmt` (a key of FORMATS) to `path`; returns what was used."""
    path = Path(path)
    if fmt == 'onnx':
        return export_onnx(model, example, path, dynamic, opset)
    if fmt == 'torchscript':
        torch.jit.save(trace(model, example), str(path))
        return dict(exporter='torch.jit.trace')
    if fmt == 'pt2':
        torch.export.save(export_program(model, example, dynamic), str(path))
        return dict(exporter='torch.export')
    raise ExportError(f'format must be one of {", ".join(FORMATS)}; got {fmt!r}')


def load_runner(fmt: str, path) -> Callable[[torch.Tensor], List[torch.Tensor]]:
    """Load an exported file and return `run(x) -> [outputs]`, as it runs for its users:
    onnxruntime (CPU) for ONNX, the loaded module for TorchScript and .pt2."""
    if fmt == 'onnx':
        import onnxruntime
        session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        input_name = session.get_inputs()[0].name
        return lambda x: [torch.from_numpy(o) for o in
                          session.run(None, {input_name: x.detach().cpu().numpy()})]
    if fmt == 'torchscript':
        module = torch.jit.load(str(path))
    else:
        module = torch.export.load(str(path)).module()
    return lambda x: as_list(module(x))


def as_list(outputs) -> List[torch.Tensor]:
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """max |got - expected| / max |expected|; inf when the shapes differ."""
    if tuple(got.shape) != tuple(expected.shape):
        return float('inf')
    scale = expected.abs().max().clamp_min(1e-12)
    return ((got.float() - expected.float()).abs().max() / scale).item()


def compare_outputs(got: Sequence[torch.Tensor], expected: Sequence[torch.Tensor],
                    names: Sequence[str], rtol: float) -> List[dict]:
    """One row per output: name, shapes, relative error, ok (a missing output is not ok)."""
    rows = []
    for i, name in enumerate(names):
        ref = expected[i]
        out = got[i] if i < len(got) else None
        error = float('inf') if out is None else relative_error(out, ref)
        rows.append(dict(name=name, shape=list(ref.shape),
                         got_shape=None if out is None else list(out.shape),
                         relative_error=error, ok=error <= rtol))
    return rows


def first_line(err: BaseException, limit: int = 200) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ''
    line = f'{type(err).__name__}: {line}' if line else type(err).__name__
    return line if len(line) <= limit else line[:limit - 3] + '...'


def our_file_named(err: BaseException) -> str:
    """The first of this package's files an error's text names (TorchScript errors name the
    unsupported construct, then where it is), as ' (mmresfamily/...)'; '' when none."""
    for part in str(err).splitlines():
        if part.strip().startswith('File "') and '/mmresfamily/' in part:
            return f' (mmresfamily/{part.split(chr(34))[1].split("/mmresfamily/", 1)[1]})'
    return ''
