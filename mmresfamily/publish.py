"""Classification (or detection/segmentation) checkpoint -> backbone-only weights to publish.

    python tools/publish_backbone.py IN.pth OUT_DIR/NAME [--prefix backbone.]

Writes OUT_DIR/NAME-<sha256[:8]>.pth holding only the `backbone.*` tensors (keys keep the prefix,
so det/seg configs load it with `init_cfg=dict(type='Pretrained', checkpoint=..., prefix=
'backbone.')`) plus a small `meta` (source, and the backbone config when the checkpoint's meta
has one). Optimizer state, message hub and heads are dropped.
"""
import argparse
import hashlib
from pathlib import Path

import torch

from .utils import load_checkpoint_file, unwrap_state_dict
from .utils.state_dict import key_prefixes


def backbone_state(checkpoint: dict, prefix: str) -> dict:
    state = unwrap_state_dict(checkpoint)
    kept = {k: v.detach().cpu().clone() for k, v in state.items()
            if k.startswith(prefix) and isinstance(v, torch.Tensor)}
    if not kept:
        raise ValueError(f'no key starts with prefix {prefix!r}; the checkpoint has: '
                         f'{key_prefixes(state)}')
    return kept


def publish(state: dict, meta: dict, output: Path) -> Path:
    """Save {'state_dict', 'meta'} as OUTPUT-<sha256[:8]>.pth (the name says what it holds)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix('.tmp')
    torch.save({'state_dict': state, 'meta': meta}, tmp)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = output.with_name(f'{output.name.removesuffix(".pth")}-{sha[:8]}.pth')
    tmp.replace(final)
    print(f'{final}: {len(state)} backbone tensors, sha256 {sha}')
    return final


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', type=Path, help='checkpoint written by tools/train.py')
    parser.add_argument('output', type=Path, help='OUT_DIR/NAME (the hash suffix is added)')
    parser.add_argument('--prefix', default='backbone.')
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f'input checkpoint not found: {args.input}')
    try:  # our own runner checkpoints hold mmengine/numpy objects: the allow-list admits them
        checkpoint = load_checkpoint_file(args.input, runner_checkpoint=True)
        state = backbone_state(checkpoint, args.prefix)
    except ValueError as err:  # an unreadable file, no state dict, no key under --prefix
        parser.error(str(err))
    meta = {'source': str(args.input)}
    source_meta = checkpoint.get('meta') or {}
    if isinstance(source_meta.get('backbone_cfg'), dict):
        meta['backbone_cfg'] = source_meta['backbone_cfg']
    return publish(state, meta, args.output)
