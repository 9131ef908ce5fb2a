#!/usr/bin/env python
"""Convert another codebase's checkpoint into an mmresfamily backbone checkpoint.

    python tools/convert_weights.py SRC MODEL IN.pth OUT.pth

writes {'state_dict': ..., 'meta': {'backbone_cfg': ..., 'source': ..., 'dropped_keys': ...}};
`MODELS.build(meta['backbone_cfg']).load_state_dict(state_dict, strict=True)` reproduces the
source model's features. Example: `python tools/convert_weights.py timm resnest50d in.pth out.pth`.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmresfamily.converters import CONVERTERS, convert, load_all  # noqa: E402

load_all()


def load_any(path: Path):
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file
        return load_file(str(path))
    # weights only: a checkpoint from elsewhere never gets to run code here
    return torch.load(path, map_location='cpu', weights_only=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', choices=sorted(CONVERTERS), help='layout of the input')
    parser.add_argument('model', help='model name in the source codebase, e.g. resnet50d')
    parser.add_argument('input', type=Path)
    parser.add_argument('output', type=Path)
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f'input checkpoint not found: {args.input}')
    state_dict, cfg, dropped = convert(args.source, args.model, load_any(args.input))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': state_dict,
                'meta': {'backbone_cfg': cfg, 'source': f'{args.source}:{args.model}',
                         'dropped_keys': dropped}}, args.output)
    print(f'{args.output}: {len(state_dict)} tensors for {cfg}; dropped {len(dropped)} '
          f'(classifier head) keys')


if __name__ == '__main__':
    main()
