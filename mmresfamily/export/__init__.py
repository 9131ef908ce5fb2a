"""Export: every backbone (and whole mmdet detectors / mmseg segmentors, `whole.py`) to ONNX,
TorchScript and torch.export files, each checked by parity against eager (`python -m mmresfamily
export`), and the capability matrix that says which family survives which path
(docs/capabilities.md)."""
from .formats import (
                      FORMATS,
                      ExportError,
                      export_file,
                      export_onnx,
                      export_program,
                      load_runner,
                      output_names,
                      trace,
)

__all__ = ['FORMATS', 'ExportError', 'export_file', 'export_onnx', 'export_program',
           'load_runner', 'output_names', 'trace']
