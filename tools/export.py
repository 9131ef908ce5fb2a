#!/usr/bin/env python
"""Export a backbone to ONNX, TorchScript or a torch.export .pt2 file and check it by parity.

    python tools/export.py TARGET --format onnx|torchscript|pt2 [--checkpoint CKPT] [--deploy]
        [--dynamic] [--opset N] [--shape H W] [--out PATH]

The same as `python -m mmresfamily export ...` (`-h` explains every option). Examples:
`python tools/export.py resnest50 --format onnx --dynamic --checkpoint mmrf://resnest50`,
`python tools/export.py my_backbone.py --format pt2 --deploy --shape 512 512`.
"""
import sys

from mmresfamily.cli import main as cli_main


def main(argv=None):
    return cli_main(['export', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__':
    main()
