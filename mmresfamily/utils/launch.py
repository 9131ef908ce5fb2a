"""Turning a config + command-line flags into an mmengine Runner (shared by tools/train.py and
tools/test.py), including distributed runs on CPU, which mmengine 0.10.7 cannot start itself."""
import ast
import contextlib
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, DictAction

from .state_dict import CheckpointError

TOOLBOXES = ('mmdet', 'mmseg', 'mmpretrain')


class ConfigError(ValueError):
    """A config file, or an entry of it, that cannot be used; the message names it."""


# what a tool reports as a one-line error (the message names the file / flag), not a traceback
USER_ERRORS = (ConfigError, CheckpointError, FileNotFoundError)


@contextlib.contextmanager
def exit_on_user_error():
    """In a tool's main(): a bad config, flag or file ends the program with its message."""
    try:
        yield
    except USER_ERRORS as err:
        raise SystemExit(f'error: {err}') from None


class CfgOptionsAction(DictAction):
    """mmengine's `--cfg-options KEY=VALUE ...`, refusing an entry without `KEY=` as an argument
    error (mmengine's own action raises an unpacking ValueError)."""

    def __call__(self, parser, namespace, values, option_string=None):
        bad = [kv for kv in values or () if not kv.partition('=')[0] or '=' not in kv]
        if bad:
            parser.error(f'{option_string} entries must be KEY=VALUE (e.g. '
                         f'train_cfg.max_iters=100); got {", ".join(map(repr, bad))}')
        super().__call__(parser, namespace, values, option_string)


def _syntax_error_in(path: str, seen: tuple = ()) -> Optional[SyntaxError]:
    """The first syntax error in a config or its `_base_` files, with its file and line
    (mmengine parses the text without a file name, so its error says neither)."""
    try:
        with open(path, encoding='utf-8') as f:
            ast.parse(f.read(), filename=path)
    except SyntaxError as err:
        return err
    try:
        bases = [Config._get_cfg_path(base, path)[0] for base in Config._get_base_files(path)]
    except Exception:  # an unusual _base_ entry: the caller reports mmengine's error instead
        return None
    for base in bases:
        if base not in seen and osp.isfile(base):
            found = _syntax_error_in(base, seen + (path, ))
            if found is not None:
                return found
    return None


def load_config(path: str, cfg_options=None, scopes=TOOLBOXES) -> Config:
    """The config at `path` with `cfg_options` merged; its default_scope must be one of
    `scopes` (None: any, or none)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        found = _syntax_error_in(path) or err
        where = found.filename if found.filename not in (None, '<unknown>') else path
        code = f': {found.text.strip()}' if found.text else ''
        raise ConfigError(f'config {where}, line {found.lineno}: {found.msg}{code}') from None
    old_root = cfg.get('data_root')
    if cfg_options:
        _open_unset_parents(cfg._cfg_dict, cfg_options)
        cfg.merge_from_dict(cfg_options)
        if old_root and 'data_root' in cfg_options:
            # the datasets copied `data_root` when the config was parsed: move them all
            _replace_prefix(cfg._cfg_dict, old_root, cfg_options['data_root'])
    scope = cfg.get('default_scope')
    if scopes is not None and scope not in scopes:
        raise ConfigError(f'config default_scope must be one of {scopes} (it picks the '
                          f'toolbox); got {scope!r} in {path}')
    return cfg


def _open_unset_parents(root, cfg_options):
    """`model.backbone.init_cfg.type=Pretrained` where the config says `init_cfg=None`: an unset
    (None) parent becomes an empty dict, as it would be had the config left it out (mmengine
    refuses to merge a dict into None)."""
    from mmengine.config import ConfigDict
    for key in cfg_options:
        node = root
        for part in key.split('.')[:-1]:
            if not isinstance(node, dict) or part not in node:
                break
            if node[part] is None:
                node[part] = ConfigDict()
            node = node[part]


def _replace_prefix(node, old: str, new: str):
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        if isinstance(value, str) and value.startswith(old) and key != 'data_root' or \
                key == 'data_root' and value == old:
            node[key] = new + value[len(old):]
        elif isinstance(value, (dict, list)):
            _replace_prefix(value, old, new)


def check_model_types(cfg: Config):
    """An unknown `mmresfamily.X` type fails here with the list of what exists."""
    from mmresfamily.registry import MODELS

    def walk(node, where):
        if isinstance(node, dict):
            type_ = node.get('type')
            if isinstance(type_, str) and type_.startswith('mmresfamily.'):
                name = type_.split('.', 1)[1]
                if MODELS.get(name) is None:
                    raise ConfigError(f'{where}.type={type_!r} is not an mmresfamily model; '
                                      f'registered: {", ".join(sorted(MODELS.module_dict))}')
            for key, value in node.items():
                walk(value, f'{where}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{where}[{i}]')

    walk(cfg.get('model', {}), 'model')


def check_data_root(cfg: Config):
    """Fail early, with the path, when a dataset's files are missing."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # RepeatDataset / ClassBalancedDataset wrappers
            dataset = dataset['dataset']
        root = dataset.get('data_root', '')
        ann = dataset.get('ann_file')
        for path in ([root] if root else []) + ([osp.join(root, ann)] if ann else []):
            if not osp.exists(path):
                hint = (' (build the quickstart data: python tools/make_quickstart_data.py)'
                        if 'quickstart' in path else '')
                raise FileNotFoundError(f'{key}: dataset path not found: {path}{hint}')


def setup_launcher(cfg: Config, launcher: str):
    """Distributed setup. On CPU, create the gloo process group ourselves (mmengine's init_dist
    calls torch.cuda.set_device unconditionally) and wrap with DDP on CPU (device_ids=None)."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = subprocess.check_output(
                ['scontrol', 'show', 'hostnames', os.environ['SLURM_NODELIST']], text=True)
            os.environ['MASTER_ADDR'] = nodes.split()[0]
    if not dist.is_initialized():
        dist.init_process_group('gloo')
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                 broadcast_buffers=False)
    for norm_holder in _norm_cfgs(cfg.model):
        if norm_holder.get('type') == 'SyncBN':
            raise ConfigError('SyncBN needs CUDA; on CPU use norm_cfg=dict(type="BN") with '
                             'norm_eval=True (frozen statistics) for distributed runs')


def _norm_cfgs(node):
    if isinstance(node, dict):
        if 'norm_cfg' in node and isinstance(node['norm_cfg'], dict):
            yield node['norm_cfg']
        for value in node.values():
            yield from _norm_cfgs(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _norm_cfgs(value)


def check_checkpoint_matches(model, checkpoint_path: str):
    """Raise a CheckpointError (a ValueError) when a checkpoint cannot be read or does not fit
    `model` (missing/unexpected keys, shape mismatches); mmengine itself only logs warnings and
    tests a half-loaded model."""
    from .pretrained import read_checkpoint
    from .state_dict import check_state_dict_fits, unwrap_state_dict
    source = f'checkpoint {checkpoint_path}'
    # a path or any URI registered with mmengine's CheckpointLoader (http(s)://, mmrf://, ...)
    state = unwrap_state_dict(read_checkpoint(checkpoint_path), source)
    check_state_dict_fits(model, state, source, 'the model built from the config')


def add_runner_args(parser):
    """The flags tools/train.py and tools/test.py share (mmdet's names)."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/CONFIG_NAME)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. train_cfg.max_iters=100 or '
                        'data_root=DIR (moves every dataset path)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def make_runner(args, configure=None):
    """Config + shared flags -> checked, launched mmengine Runner. `configure(cfg)` applies the
    tool's own flags before the checks."""
    from mmengine.runner import Runner

    from .checkpoint import install_runner_checkpoint_allowlist
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if configure is not None:
        configure(cfg)
    check_model_types(cfg)
    check_data_root(cfg)
    setup_launcher(cfg, args.launcher)
    install_runner_checkpoint_allowlist()
    return Runner.from_cfg(cfg)


def read_scalars(work_dir) -> list:
    """The records mmengine's LoggerHook wrote (train losses, val metrics) in the latest run
    under `work_dir` (`*/vis_data/scalars.json`, one per Runner built there)."""
    import json
    from pathlib import Path
    logs = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    if not logs:
        raise FileNotFoundError(f'no mmengine scalars log under {work_dir}')
    return [json.loads(line) for line in logs[-1].read_text().splitlines()]
