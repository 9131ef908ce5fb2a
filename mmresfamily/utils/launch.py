"""Turning a config + command-line flags into an mmengine Runner (shared by tools/train.py and
tools/test.py), including distributed runs on CPU, which mmengine 0.10.7 cannot start itself."""
import os
import os.path as osp

import torch
from mmengine.config import Config

TOOLBOXES = ('mmdet', 'mmseg', 'mmpretrain')


def load_config(path: str, cfg_options=None) -> Config:
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    old_root = cfg.get('data_root')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        if old_root and 'data_root' in cfg_options:
            # the datasets copied `data_root` when the config was parsed: move them all
            _replace_prefix(cfg._cfg_dict, old_root, cfg_options['data_root'])
    scope = cfg.get('default_scope')
    if scope not in TOOLBOXES:
        raise ValueError(f'config default_scope must be one of {TOOLBOXES} (it picks the '
                         f'toolbox); got {scope!r} in {path}')
    return cfg


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
                    raise KeyError(f'{where}.type={type_!r} is not an mmresfamily model; '
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
            raise ValueError('SyncBN needs CUDA; on CPU use norm_cfg=dict(type="BN") with '
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


def check_checkpoint_matches(model, checkpoint_path: str, max_listed: int = 5):
    """Raise a ValueError describing how a checkpoint fails to fit `model` (missing/unexpected
    keys, shape mismatches); mmengine itself only logs warnings and tests a half-loaded model."""
    if not osp.isfile(checkpoint_path):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint_path}')
    from .checkpoint import trusted_runner_checkpoints
    with trusted_runner_checkpoints():
        ckpt = torch.load(checkpoint_path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    ours = getattr(model, 'module', model).state_dict()  # unwrap DistributedDataParallel
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    shapes = sorted(k for k in set(ours) & set(state)
                    if hasattr(state[k], 'shape') and state[k].shape != ours[k].shape)
    if missing or unexpected or shapes:
        def some(keys):
            more = f' ... (+{len(keys) - max_listed})' if len(keys) > max_listed else ''
            return ', '.join(keys[:max_listed]) + more
        problems = []
        if missing:
            problems.append(f'{len(missing)} model keys missing from it: {some(missing)}')
        if unexpected:
            problems.append(f'{len(unexpected)} keys the model lacks: {some(unexpected)}')
        if shapes:
            problems.append(f'{len(shapes)} shape mismatches: ' + ', '.join(
                f'{k} {tuple(state[k].shape)} vs model {tuple(ours[k].shape)}'
                for k in shapes[:max_listed]))
        raise ValueError(f'checkpoint {checkpoint_path} does not match the model built from '
                         f'the config: ' + '; '.join(problems))


def add_runner_args(parser):
    """The flags tools/train.py and tools/test.py share (mmdet's names)."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/CONFIG_NAME)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
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
