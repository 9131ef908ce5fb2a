"""Reading a checkpoint file of any kind we accept, with errors that say what the file is.

`load_checkpoint_file` reads torch checkpoints (zip archives, and the legacy pickle format) with
`weights_only=True`, optionally under the runner-checkpoint allow-list of `.checkpoint`, and
safetensors files. A file it cannot read gets a message naming the path and what is wrong: empty,
not a checkpoint at all, a zip cut short, a damaged pickle, a broken safetensors header, or a
pickle that asks for objects outside what may be loaded.
"""
import contextlib
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import torch

from .checkpoint import CheckpointRefusedError, trusted_runner_checkpoints
from .state_dict import CheckpointError

ZIP_MAGIC = b'PK\x03\x04'  # torch.save's default format is a zip archive
PICKLE_PROTO = 0x80  # the legacy format is a pickle, which starts with the PROTO opcode
# lines of torch's weights-only error that are advice, not the reason
TORCH_BOILERPLATE = ('Weights only load failed', 'Check the documentation', 'Please file an issue')


class CheckpointFileError(CheckpointError):
    """The file is not a checkpoint that can be read; the message names the path and why."""


def _file_kind(path: Path, head: bytes) -> str:
    if path.suffix == '.safetensors' or head[8:10] == b'{"':  # u64 header length, then JSON
        return 'safetensors'
    if head.startswith(ZIP_MAGIC):
        return 'zip'
    if len(head) > 1 and head[0] == PICKLE_PROTO and 2 <= head[1] <= 5:
        return 'pickle'
    return 'unknown'


def _torch_reason(message: str) -> str:
    """The informative line(s) of a torch.load error."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    kept = [line.split('WeightsUnpickler error:', 1)[-1].strip() for line in lines
            if not line.startswith(TORCH_BOILERPLATE) or 'WeightsUnpickler error:' in line]
    return ' '.join(k for k in kept if k) or message.strip()


def _safetensors_problem(path: Path, size: int) -> str:
    """What is wrong with a safetensors file that does not load: u64 header length, JSON header
    (tensor name -> dtype, shape, data_offsets), then the data."""
    with open(path, 'rb') as f:
        raw = f.read(8)
        declared = struct.unpack('<Q', raw)[0] if len(raw) == 8 else None
        if declared is None or declared > size - 8:
            return (f'a safetensors file with a broken header (its length field says {declared} '
                    f'bytes but {max(size - 8, 0)} follow)')
        try:
            header = json.loads(f.read(declared))
        except ValueError as err:
            return f'a safetensors file with a broken header (not valid JSON: {err})'
    ends = [entry['data_offsets'][1] for entry in header.values()
            if isinstance(entry, dict) and 'data_offsets' in entry]
    data = size - 8 - declared
    if ends and max(ends) > data:
        return (f'a truncated safetensors file (its header places tensor data up to byte '
                f'{max(ends)} but {data} bytes follow)')
    return ''


def _load_safetensors(path: Path, map_location, size: int) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        return load_file(str(path), device=str(device))
    except SafetensorError as err:
        problem = _safetensors_problem(path, size) or f'a damaged safetensors file ({err})'
        raise CheckpointFileError(f'checkpoint {path} is {problem}; {size} bytes') from None


def _refusal(path: Path, err: pickle.UnpicklingError):
    """A weights-only refusal (the pickle names a global that may not be loaded) or None (the
    pickle is damaged: torch reports that as an unpickling error too)."""
    if isinstance(err, CheckpointRefusedError):
        torch_err = err.__cause__
        if torch_err is None:  # refused by our own getattr stand-in (its message says why)
            return CheckpointRefusedError(f'{path}: {err}')
        if 'GLOBAL' in str(torch_err):  # the allow-list's message, with torch's reason only
            said = str(err).split(' torch said: ')[0]
            return CheckpointRefusedError(f'{path}: {said} ({_torch_reason(str(torch_err))})')
        return None
    if 'GLOBAL' in str(err):
        return CheckpointRefusedError(
            f'{path}: checkpoint refused: it holds a pickled object that weights-only loading '
            f'does not allow ({_torch_reason(str(err))}); it was not loaded')
    return None


def load_checkpoint_file(path, map_location='cpu', runner_checkpoint: bool = False):
    """Load a checkpoint file: torch (zip or legacy pickle) with `weights_only=True`, or
    safetensors. `runner_checkpoint=True` admits the harmless extra objects of mmengine runner
    checkpoints (`trusted_runner_checkpoints`). Raises FileNotFoundError, CheckpointFileError
    (naming the path and what the file is) or CheckpointRefusedError."""
    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if not path.is_file():
        raise CheckpointFileError(f'checkpoint {path} is not a file')
    size = path.stat().st_size
    if size == 0:
        raise CheckpointFileError(f'checkpoint {path} is empty (0 bytes): an interrupted download '
                                  'or save?')
    with open(path, 'rb') as f:
        head = f.read(16)
    kind = _file_kind(path, head)
    if kind == 'safetensors':
        return _load_safetensors(path, map_location, size)
    if kind == 'unknown':
        raise CheckpointFileError(
            f'checkpoint {path} is not a checkpoint: neither a torch zip archive, a legacy torch '
            f'pickle nor safetensors ({size} bytes starting {head[:8].hex(" ")})')
    if kind == 'zip' and not zipfile.is_zipfile(path):
        raise CheckpointFileError(f'checkpoint {path} is a truncated zip archive (a torch '
                                  f'checkpoint cut short: no zip directory at its end; {size} '
                                  'bytes): an interrupted download or save?')
    what = 'torch zip archive' if kind == 'zip' else 'legacy torch pickle'
    allow_list = trusted_runner_checkpoints() if runner_checkpoint else contextlib.nullcontext()
    try:
        with allow_list:
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refusal(path, err)
        if refused is not None:
            raise refused from None
        reason = _torch_reason(str(err.__cause__ or err))
        raise CheckpointFileError(f'checkpoint {path} is a damaged {what}: its pickle cannot be '
                                  f'read ({reason}; {size} bytes)') from None
    except (EOFError, struct.error, IndexError):  # the unpickler read past the end
        raise CheckpointFileError(f'checkpoint {path} is a truncated {what} (its data ends '
                                  f'early; {size} bytes): an interrupted download or save?') \
            from None
    except RuntimeError as err:
        if 'PytorchStreamReader' not in str(err):  # not the archive (e.g. a CUDA map_location)
            raise
        raise CheckpointFileError(f'checkpoint {path} is a damaged {what} '
                                  f'({_torch_reason(str(err))}; {size} bytes)') from None
