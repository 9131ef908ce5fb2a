"""Whole mmseg segmentors and mmdet detectors as `image -> tensors` modules for export.

The exported graph is the network's tensor-mode forward on preprocessed images (normalised and
padded as the config's data_preprocessor does; that step is not in the file), without
post-processing:
- a segmentor (EncoderDecoder and its subclasses): the decode head's logits resized (bilinear,
  the head's align_corners) to the input size, as mmseg's `encode_decode` returns them for an
  unpadded image -- one output, `seg_logits` (N x classes x H x W);
- a single-stage detector: backbone + neck + bbox_head raw outputs (`model._forward`, what
  mmdeploy exports before decoding and NMS);
- a two-stage detector: backbone + neck + rpn_head raw outputs. Its RoI head works on the RPN's
  proposals, which come out of NMS (data-dependent shapes), so it is not part of the file.
Detector outputs are per-level lists flattened into named outputs, `<name>_<level>` with the
names of the head's `loss_by_feat` arguments (`cls_scores_0`, ..., `bbox_preds_0`, ...).

The model is built with its config's weights files turned off (every `Pretrained` init_cfg and
`pretrained=` removed) and torch's random initialisation, SyncBN reverted to BN for CPU;
`--checkpoint` loads the whole model's weights (strict).
"""
import inspect
import types
from pathlib import Path
from typing import List, Tuple

import torch
import torch.nn as nn

from .formats import ExportError

WHOLE_SCOPES = ('mmdet', 'mmseg')
SEED = 0


def without_weights_files(node):
    """A copy of a config (dict / list tree) with `pretrained=` and Pretrained init_cfgs off."""
    if isinstance(node, (list, tuple)):
        return type(node)(without_weights_files(v) for v in node)
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == 'pretrained' and isinstance(value, str):
            value = None
        elif key == 'init_cfg' and loads_file(value):
            value = None
        out[key] = without_weights_files(value)
    return out


def loads_file(init_cfg) -> bool:
    items = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(i, dict) and i.get('type') == 'Pretrained' for i in items)


def symbolic_upsampling_(model: nn.Module) -> nn.Module:
    """mmseg's `Upsample` sizes its output with `int(size * scale)`, which fixes a dynamic export
    to the example's size; with an integral scale the same size is kept symbolic."""
    from mmseg.models.utils import Upsample
    for m in model.modules():
        if isinstance(m, Upsample) and not m.size and isinstance(m.scale_factor, float) \
                and m.scale_factor.is_integer():
            m.forward = types.MethodType(upsample_by_integral_scale, m)
    return model


def upsample_by_integral_scale(self, x):
    from mmseg.models.utils import resize
    scale = int(self.scale_factor)
    return resize(x, [t * scale for t in x.shape[-2:]], None, self.mode, self.align_corners)


def exported_part(model: nn.Module, head: str) -> str:
    """'backbone + neck + HEAD' with the modules `model` has."""
    return ' + '.join(name for name in ('backbone', 'neck', head)
                      if getattr(model, name, None) is not None)


class SegmentorLogits(nn.Module):
    """An mmseg segmentor as `images -> (logits at the input size, )`."""

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = symbolic_upsampling_(segmentor)
        self.part = f'{exported_part(segmentor, "decode_head")}, logits resized to the input size'
        self.output_names = ['seg_logits']

    def forward(self, x):
        from mmseg.models.utils import resize
        logits = self.segmentor._forward(x)
        return (resize(logits, size=x.shape[2:], mode='bilinear',
                       align_corners=self.segmentor.decode_head.align_corners), )


class DetectorHeadOutputs(nn.Module):
    """An mmdet detector as `images -> raw head outputs`, flattened level by level."""

    def __init__(self, detector: nn.Module, example: torch.Tensor):
        super().__init__()
        self.detector = detector
        # a two-stage detector's RoI head needs the RPN's proposals, which come out of NMS
        self.head_name = 'rpn_head' if getattr(detector, 'with_rpn', False) else 'bbox_head'
        self.part = f'{exported_part(detector, self.head_name)} raw outputs (before decoding ' \
                    f'and NMS)'
        with torch.no_grad():
            outputs = self.head_outputs(example)
        head = getattr(detector, self.head_name)
        args = [p for p in inspect.signature(head.loss_by_feat).parameters][:len(outputs)]
        args += [f'output{i}' for i in range(len(args), len(outputs))]
        self.output_names = [f'{arg}_{level}' for arg, per_level in zip(args, outputs)
                             for level in range(len(per_level))]

    def head_outputs(self, x) -> Tuple[List[torch.Tensor], ...]:
        return getattr(self.detector, self.head_name)(self.detector.extract_feat(x))

    def forward(self, x):
        return tuple(t for per_level in self.head_outputs(x) for t in per_level)


def is_backbone_type(type_name) -> bool:
    from ..models.backbones import BaseBackbone
    from ..registry import MODELS
    cls = type_name if isinstance(type_name, type) else MODELS.get(type_name)
    return isinstance(cls, type) and issubclass(cls, BaseBackbone)


def read_config(path: Path, cfg_options=None):
    """The config file `path` (with `cfg_options`) whose model is a backbone or a whole mmdet /
    mmseg model; refuses configs without a model and whole models outside those scopes."""
    from ..utils.launch import load_config
    cfg = load_config(str(path), cfg_options, scopes=None)
    model = cfg.get('model')
    if not isinstance(model, dict) or 'type' not in model:
        raise ValueError(f'{path} has no `model` dict with a type; give a config whose model is '
                         f"a backbone, e.g. model = dict(type='mmresfamily.ResNeSt', depth=50), "
                         f'or an mmdet detector / mmseg segmentor')
    scope = cfg.get('default_scope')
    if not is_backbone_type(model['type']) and scope not in WHOLE_SCOPES:
        inside = (f" (its backbone: {model['backbone'].get('type')})"
                  if isinstance(model.get('backbone'), dict) else '')
        raise ValueError(f"{path}: model type {model['type']!r}{inside} is not an mmresfamily "
                         f'backbone, and whole models are exported from configs with '
                         f"default_scope 'mmdet' or 'mmseg' (got {scope!r}; stock configs "
                         f'inherit it from their _base_)')
    return cfg


def build_whole(cfg, shape: Tuple[int, int], checkpoint=None) -> nn.Module:
    """The export module of a whole-model config (see the module doc), in eval mode, with
    `in_channels` and `output_names` (found by a forward at `shape`)."""
    from mmengine.config import ConfigDict
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope

    import mmresfamily  # noqa: F401  (registers our backbones)
    init_default_scope(cfg.default_scope)
    model_cfg = ConfigDict(without_weights_files(cfg.model.to_dict()))
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        model = MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model)
    if checkpoint:
        from ..utils.pretrained import load_pretrained
        load_pretrained(model, str(checkpoint))
    model.eval()
    in_channels = getattr(getattr(model, 'backbone', None), 'in_channels', 3)
    wrapped = None
    if cfg.default_scope == 'mmseg':
        from mmseg.models.segmentors import EncoderDecoder
        if isinstance(model, EncoderDecoder):
            wrapped = SegmentorLogits(model)
    else:
        from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
        if isinstance(model, (SingleStageDetector, TwoStageDetector)):
            wrapped = DetectorHeadOutputs(model, torch.zeros(1, in_channels, *shape))
    if wrapped is not None:
        wrapped.in_channels = in_channels
        return wrapped.eval()
    raise ExportError(f'{type(model).__name__} ({cfg.default_scope}) is neither a backbone nor an '
                      f'exportable whole model: give an mmseg EncoderDecoder segmentor or an '
                      f'mmdet single-stage / two-stage detector')
