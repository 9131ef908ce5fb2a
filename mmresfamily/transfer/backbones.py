"""The backbones compared: read from the command line, built once to check them, and their
weights checked against them before any training."""
from pathlib import Path

from ..utils.cli import is_literal_dict, literal_value
from ..utils.paths import CONFIGS

BACKBONE_FILES = CONFIGS / '_base_/backbones'


def parse_backbone_spec(name, spec):
    """`dict(...)` / `{...}` (literals only: nothing is executed) or a backbone config name."""
    if is_literal_dict(spec):
        try:
            cfg = literal_value(spec)
        except (SyntaxError, ValueError) as err:
            raise SystemExit(f'--backbone {name}: SPEC is not a literal dict ({err}): {spec}')
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise SystemExit(f'--backbone {name}: SPEC needs a dict with a type, got: {spec}')
        return cfg
    text = spec.strip()
    path = Path(text) if text.endswith('.py') else BACKBONE_FILES / f'{text}.py'
    if not path.is_file():
        known = ', '.join(sorted(p.stem for p in BACKBONE_FILES.glob('*.py')))
        raise SystemExit(f"--backbone {name}: SPEC {spec!r} is neither dict(...) nor a backbone "
                         f"config; known names: {known}")
    from mmengine.config import Config
    cfg = Config.fromfile(str(path)).get('backbone_det')
    if cfg is None:
        raise SystemExit(f'--backbone {name}: {path} defines no backbone_det')
    cfg = cfg.to_dict()
    cfg.pop('_delete_', None)
    return cfg


def build_backbone(name, cfg):
    """The backbone once, to read its out_channels (and check checkpoint keys)."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from ..registry import MODELS as OURS
    type_ = str(cfg['type'])
    if type_.startswith('mmresfamily.') and OURS.get(type_.split('.', 1)[1]) is None:
        raise SystemExit(f'--backbone {name}: type {type_!r} is not an mmresfamily backbone; '
                         f'registered: {", ".join(sorted(OURS.module_dict))}')
    try:
        backbone = MODELS.build(dict(cfg, init_cfg=None))
    except Exception as err:  # unknown type, bad option, ...: say which --backbone
        raise SystemExit(f'--backbone {name}: cannot build {cfg}: {type(err).__name__}: {err}')
    channels = getattr(backbone, 'out_channels', None)
    if not isinstance(channels, (tuple, list)):  # e.g. mmdet's own backbones: ask a forward
        with torch.no_grad():
            channels = [f.shape[1] for f in backbone.eval()(torch.zeros(1, 3, 64, 64))]
    return backbone, list(channels)


def backbone_weights(name, path, backbone, out_file):
    """CHECKPOINT -> a file of `backbone.`-prefixed tensors that fit `backbone` (checked here,
    before any training: a bad file or a checkpoint of another backbone fails at once)."""
    import torch

    from ..utils import (
        CheckpointError,
        check_state_dict_fits,
        load_checkpoint_file,
        select_prefix,
        unwrap_state_dict,
    )
    try:  # full classification checkpoints hold runner state: the allow-list admits it
        state = unwrap_state_dict(load_checkpoint_file(path, runner_checkpoint=True),
                                  f'checkpoint {path}')
        state = {k: v for k, v in state.items() if torch.is_tensor(v)}
        # a classifier / detector keeps the backbone under `backbone.`; converted weights
        # (`python -m mmresfamily convert`) carry bare backbone keys
        state = select_prefix(state, 'backbone.') or state
        check_state_dict_fits(backbone, state, f'checkpoint {path}', 'the backbone')
    except CheckpointError as err:
        raise SystemExit(f'--backbone {name}: {err}')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, out_file)
    return str(out_file)
