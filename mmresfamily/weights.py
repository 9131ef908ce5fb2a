"""Checkpoint URIs that find, verify and convert weights on load.

Registered with mmengine's `CheckpointLoader` when mmresfamily is imported, so every
`init_cfg=dict(type='Pretrained', checkpoint=URI)`, `load_from` and tool that loads through
mmengine takes them:

    timm://<hub id>          timm's file from the Hugging Face hub (`timm://resnest50d.in1k`)
    official://<name>        the authors' release of a model-table row (`official://resnest50`)
    mmrf://<name>            a model-table row's default source (`mmrf://densenet121`)
    torchvision://<name>     mmengine's own scheme, kept as it is (torchvision's key layout, which
                             mmdet's own ResNet configs load) with a hash check added

The first three return our key layout: the file is converted on first use and the result cached,
keyed by the file's sha256 and the converters' version, so later loads are a plain state-dict
load. `torchvision://` keeps torchvision's layout because stock mmdet configs rely on it; it equals
ours for ResNet / ResNeXt, and `mmrf://` gives the converted DenseNet.

A file is looked for, in order, in `$MMRF_WEIGHTS` (a folder), the library cache
(`$MMRF_CACHE/weights`, default ~/.cache/mmresfamily/weights), the Hugging Face / torch hub caches,
and is downloaded (with a progress bar) only when none has it and `MMRF_OFFLINE` /
`HF_HUB_OFFLINE` is not set. Its sha256 is checked wherever the expected value is known (a torch
hub file name carries its first hex digits; a Hugging Face blob is named by it) and is always
recorded, with the URI, in the converted file's `meta` and in the log.
"""
import hashlib
import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader

from . import zoo
from .utils.checkpoint_file import load_checkpoint_file

SCHEMES = ('timm://', 'official://', 'mmrf://')


class WeightsNotFoundError(FileNotFoundError):
    """No copy of the weights anywhere we looked, and no download possible."""


class ChecksumError(ValueError):
    """A weights file whose sha256 is not the published one."""


# ---- places ------------------------------------------------------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get('MMRF_CACHE', '~/.cache/mmresfamily')).expanduser() / 'weights'


def offline() -> bool:
    return any(os.environ.get(v, '').lower() in ('1', 'true', 'yes')
               for v in ('MMRF_OFFLINE', 'HF_HUB_OFFLINE'))


def hf_cache_dir() -> Path:
    if os.environ.get('HF_HUB_CACHE'):
        return Path(os.environ['HF_HUB_CACHE'])
    return Path(os.environ.get('HF_HOME', '~/.cache/huggingface')).expanduser() / 'hub'


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / 'checkpoints'


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, expected: Optional[str], uri: str) -> str:
    """The file's sha256, refused unless it starts with `expected` (when one is known)."""
    actual = sha256_of(path)
    if expected and not actual.startswith(expected.lower()):
        raise ChecksumError(
            f'{uri}: {path} has sha256 {actual}, but the published file has {expected}'
            f'{"..." if len(expected) < 64 else ""}: it is damaged or not that release. '
            f'Delete it and fetch again (python -m mmresfamily fetch {uri}).')
    return actual


# ---- finding one file ------------------------------------------------------------------------
class _Search:
    """Walks the places a file may be, remembering each one for the error message."""

    def __init__(self, uri: str, filename: str):
        self.uri, self.filename, self.searched = uri, filename, []

    def local(self, folder: Optional[Path], label: str) -> Optional[Path]:
        if folder is None:
            self.searched.append(f'{label}: not set')
            return None
        path = Path(folder) / self.filename
        self.searched.append(f'{label}: {path}')
        return path if path.is_file() else None

    def user_places(self) -> Optional[Path]:
        env = os.environ.get('MMRF_WEIGHTS')
        return (self.local(Path(env) if env else None, '$MMRF_WEIGHTS')
                or self.local(cache_dir(), 'library cache'))

    def fail(self, fix: str, reason: str = '') -> WeightsNotFoundError:
        places = '\n'.join(f'  - {p}' for p in self.searched)
        why = f' ({reason})' if reason else ''
        return WeightsNotFoundError(
            f'{self.uri}: weights not found{why}. Searched:\n{places}\nFix: {fix}, or put the file '
            f'at {cache_dir() / self.filename} (or in the folder named by $MMRF_WEIGHTS).')


def _download(search: _Search, url: str, dst: Path, hash_prefix: Optional[str]) -> Path:
    if offline():
        raise search.fail(f'unset MMRF_OFFLINE/HF_HUB_OFFLINE, or run `python -m mmresfamily '
                          f'fetch {search.uri}` on a machine with network', 'offline')
    search.searched.append(f'download {url}')
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        # writes to a temporary file and moves it into place only when complete (and verified)
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix, progress=True)
    except Exception as err:  # urllib/http/socket errors: report them, not their traceback
        if isinstance(err, RuntimeError) and 'invalid hash value' in str(err):
            raise ChecksumError(f'{search.uri}: the download from {url} does not match the '
                                f'published sha256 prefix {hash_prefix} ({err})') from None
        raise search.fail(f'run `python -m mmresfamily fetch {search.uri}` on a machine with '
                          f'network', f'download failed: {type(err).__name__}: {err}') from None
    return dst


def fetch_hub_file(uri: str, url: str, filename: str, folder: Path,
                   hash_prefix: Optional[str]) -> Path:
    """A torch-hub style file (torchvision, official releases): our places, `folder`, download."""
    search = _Search(uri, filename)
    path = search.user_places() or search.local(folder, 'download cache')
    return path if path is not None else _download(search, url, folder / filename, hash_prefix)


def manual_file(uri: str, source: zoo.Source) -> Path:
    search = _Search(uri, source.filename)
    path = search.user_places()
    if path is None:
        raise search.fail(f'download it by hand from {source.manual}') from None
    return path


def timm_file(uri: str, hub_id: str) -> Tuple[Path, Optional[str]]:
    """The safetensors file of `timm/<hub_id>`: our places, the HF cache, then the hub.
    Returns the path and, for a hub blob, the sha256 it is named by."""
    search = _Search(uri, f'{hub_id}.safetensors')
    path = search.user_places()
    if path is not None:
        return path, None
    from huggingface_hub import hf_hub_download
    repo = f'timm/{hub_id}'
    search.searched.append(f'Hugging Face cache: {hf_cache_dir()} ({repo})')
    try:
        path = Path(hf_hub_download(repo, 'model.safetensors', cache_dir=hf_cache_dir(),
                                    local_files_only=True))
    except Exception:  # not cached
        if offline():
            raise search.fail(f'run `python -m mmresfamily fetch {uri}` on a machine with '
                              f'network (it fills the Hugging Face cache)', 'offline') from None
        search.searched.append(f'download from the hub ({repo})')
        try:
            path = Path(hf_hub_download(repo, 'model.safetensors', cache_dir=hf_cache_dir()))
        except Exception as err:
            raise search.fail(f'run `python -m mmresfamily fetch {uri}` on a machine with '
                              f'network (offline, HF_HUB_OFFLINE=1 skips the hub at once)',
                              f'download failed: {type(err).__name__}: {err}') from None
    blob = path.resolve().name  # the hub names an LFS blob by its sha256
    return path, blob if re.fullmatch(r'[0-9a-f]{64}', blob) else None


# ---- sources -> our layout ----------------------------------------------------------------------
def locate(source: zoo.Source) -> Tuple[Path, str]:
    """(path, sha256) of a table source's file, found or downloaded, and verified."""
    uri = source.uri
    if source.scheme == 'timm':
        path, expected = timm_file(uri, source.ref)
    elif source.url is None:
        path, expected = manual_file(uri, source), source.sha256_prefix
    else:
        folder = torch_hub_checkpoints() if source.scheme == 'torchvision' else \
            cache_dir() / source.scheme
        path = fetch_hub_file(uri, source.url, source.filename, folder, source.sha256_prefix)
        expected = source.sha256_prefix
    return path, verify(path, expected, uri)


def converted(source: zoo.Source, uri: Optional[str] = None) -> Path:
    """The source converted into our layout, from the cache when this exact file and converter
    version were converted before."""
    from .converters import CONVERTER_VERSION, convert
    uri = uri or source.uri
    path, sha = locate(source)
    target = cache_dir() / 'converted' / (
        f'{source.scheme}-{source.ref}-{sha[:16]}-c{CONVERTER_VERSION}.pth')
    if not target.is_file():
        # the authors' releases include mmcls runner checkpoints (RedNet)
        checkpoint = load_checkpoint_file(path, runner_checkpoint=source.scheme == 'official')
        state_dict, cfg, dropped = convert(*source.convert, checkpoint)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix('.tmp')
        torch.save({'state_dict': state_dict,
                    'meta': dict(backbone_cfg=cfg, uri=uri, source_file=str(path), sha256=sha,
                                 converter=':'.join(source.convert),
                                 converter_version=CONVERTER_VERSION, dropped_keys=dropped)}, tmp)
        tmp.replace(target)  # complete files only: an interrupted conversion is redone
    print_log(f'{uri}: {path} (sha256 {sha}) -> {target}', logger='current')
    return target


def source_for(uri: str) -> zoo.Source:
    """The table source a `timm://`, `official://` or `mmrf://` URI names."""
    scheme, _, name = uri.partition('://')
    if scheme == 'timm':
        hub_id = name.removeprefix('timm/')
        for model in zoo.MODELS.values():
            for source in model.sources:
                if source.scheme == 'timm' and source.ref == hub_id:
                    return source
        return zoo.timm(hub_id, None, license='see the hub page')  # any timm model we convert
    model = zoo.get(name)
    if scheme == 'official':
        return model.source('official')
    if model.default_source is None:
        raise KeyError(f'{uri}: {name} has no published weights ({model.cite}); train it '
                       f'(configs/pretrain/) and load the file by path')
    return model.default_source


def load_uri(uri: str, map_location=None) -> dict:
    """CheckpointLoader entry for our schemes: the converted checkpoint (our layout)."""
    return load_checkpoint_file(converted(source_for(uri), uri), map_location or 'cpu')


def load_torchvision(uri: str, map_location=None) -> dict:
    """mmengine's `torchvision://NAME` (and `modelzoo://`), same names and layout, verified."""
    from mmengine.runner.checkpoint import get_torchvision_models
    name = uri.split('://', 1)[1]
    urls = get_torchvision_models()
    if name not in urls:
        import difflib
        close = ', '.join(difflib.get_close_matches(name, urls, n=5)) or 'none'
        raise KeyError(f'{uri}: torchvision has no weights named {name!r} (close: {close})')
    filename = urls[name].rsplit('/', 1)[1]
    prefix = zoo.HASH_IN_NAME.search(filename)
    prefix = prefix.group(1) if prefix else None
    path = fetch_hub_file(uri, urls[name], filename, torch_hub_checkpoints(), prefix)
    sha = verify(path, prefix, uri)
    print_log(f'{uri}: {path} (sha256 {sha})', logger='current')
    state_dict = load_checkpoint_file(path, map_location or 'cpu')
    return {'state_dict': state_dict, 'meta': dict(uri=uri, sha256=sha, source_file=str(path))}


def register_schemes():
    """Idempotent; done when mmresfamily is imported."""
    CheckpointLoader.register_scheme(list(SCHEMES), load_uri, force=True)
    CheckpointLoader.register_scheme(['torchvision://', 'modelzoo://'], load_torchvision,
                                     force=True)


def fetch(uri: str) -> List[Path]:
    """Download / verify / convert into the caches (`python -m mmresfamily fetch`)."""
    if uri.startswith(('torchvision://', 'modelzoo://')):
        load_torchvision(uri)
        return []
    if '://' not in uri:
        uri = f'mmrf://{uri}'
    return [converted(source_for(uri), uri)]

