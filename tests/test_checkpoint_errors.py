"""Checkpoints that do not fit are refused, naming the keys and shapes; bad files are named and
described; every loader of the package and tools goes through the same two functions
(`load_checkpoint_file`, `check_state_dict_fits`)."""
import logging
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MMLogger

from mmresfamily.converters import convert
from mmresfamily.registry import MODELS
from mmresfamily.utils import (
    CheckpointFileError,
    CheckpointMismatchError,
    compare_state_dicts,
    load_checkpoint_file,
    load_pretrained,
)

R18, R50 = dict(type='mmresfamily.ResNet', depth=18), dict(type='mmresfamily.ResNet', depth=50)


@pytest.fixture(scope='module')
def r18_file(tmp_path_factory):
    """A ResNet-18 checkpoint with non-default weights (so a load shows)."""
    model = MODELS.build(R18)
    model.init_weights()
    path = tmp_path_factory.mktemp('r18') / 'r18.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path, model.state_dict()


class LogLines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines():
    logger, handler = MMLogger.get_current_instance(), LogLines()
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def shapes(state):
    return {k: tuple(v.shape) for k, v in state.items()}


# ---- the Pretrained init_cfg -------------------------------------------------------------------
def test_pretrained_of_another_architecture_is_refused(r18_file):
    path, r18 = r18_file
    model = MODELS.build(dict(R50, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ours = shapes(model.state_dict())
    missing = sorted(k for k in ours if k not in r18 and 'num_batches_tracked' not in k)
    mismatched = [k for k in ours if k in r18 and ours[k] != tuple(r18[k].shape)]
    with pytest.raises(CheckpointMismatchError) as err:
        model.init_weights()
    message = str(err.value)
    assert f'checkpoint {path} does not match ResNet' in message
    assert f'{len(missing)} model keys missing from it: {", ".join(missing[:5])} ...' in message
    first = mismatched[0]
    assert (f'{len(mismatched)} shape mismatches: {first} {tuple(r18[first].shape)} vs model '
            f'{ours[first]}') in message
    assert 'strict=False' in message  # says how to load a part deliberately
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), 'half-loaded'


def test_pretrained_strict_false_loads_what_fits_and_logs_counts(r18_file, log_lines):
    path, r18 = r18_file
    model = MODELS.build(dict(R50, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                 strict=False)))
    model.init_weights()
    ours = model.state_dict()
    fitting = [k for k in ours if k in r18 and ours[k].shape == r18[k].shape]
    assert 'conv1.weight' in fitting and 'layer1.0.conv1.weight' not in fitting
    for k in fitting:
        assert torch.equal(ours[k], r18[k]), k
    # a tensor that does not fit keeps the model's own initialisation
    assert ours['layer1.0.conv1.weight'].shape != r18['layer1.0.conv1.weight'].shape
    summary = [line for line in log_lines if line.startswith('load_pretrained: ResNet')]
    assert len(summary) == 1 and f'from checkpoint {path}' in summary[0]
    missing = [k for k in ours if k not in r18 and 'num_batches_tracked' not in k]
    unexpected = [k for k in r18 if k not in ours]
    mismatched = [k for k in ours if k in r18 and ours[k].shape != r18[k].shape]
    assert (f'loaded {len(fitting)} tensors; {len(missing)} missing, {len(unexpected)} '
            f'unexpected, {len(mismatched)} shape mismatches') in summary[0]
    assert any('not loaded' in line and 'strict=False' in line for line in log_lines)


def runner_style(state_dict):
    """A checkpoint as an mmengine runner writes it (HistoryBuffer and numpy in its meta)."""
    buf = HistoryBuffer()
    buf.update(1.0)
    return {'meta': {'epoch': 3, 'lr': np.float64(0.01)}, 'state_dict': state_dict,
            'message_hub': {'log_scalars': {'loss': buf}}}


@pytest.fixture(scope='module')
def detector_cfg():
    pytest.importorskip('mmdet')
    from mmengine.config import Config

    root = Path(__file__).resolve().parents[1]
    cfg = Config.fromfile(str(root / 'configs/quickstart/faster-rcnn_r18_fpn_quickstart.py'))
    return cfg.model


def build_detector(cfg):
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return DET_MODELS.build(cfg)


def test_whole_detector_checkpoint_loads_into_the_backbone_with_prefix(detector_cfg, tmp_path):
    source = build_detector(detector_cfg.copy())
    source.init_weights()
    path = tmp_path / 'detector.pth'
    torch.save(runner_style(source.state_dict()), path)
    # the backbone inside a detector, as mmdet configs use it
    cfg = detector_cfg.copy()
    cfg.backbone = dict(cfg.backbone, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                    prefix='backbone.'))
    detector = build_detector(cfg)
    detector.init_weights()
    theirs = {k[len('backbone.'):]: v for k, v in source.state_dict().items()
              if k.startswith('backbone.')}
    ours = detector.backbone.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], v) for k, v in theirs.items())
    # without the prefix the same file is refused, and the message says which prefix fits
    backbone = MODELS.build(dict(detector_cfg.backbone,
                                 init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.raises(CheckpointMismatchError, match=r"start with 'backbone\.': set "
                                                      r"prefix='backbone\.'"):
        backbone.init_weights()
    # a prefix the checkpoint lacks names the prefixes it has
    backbone = MODELS.build(dict(detector_cfg.backbone, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='encoder.')))
    with pytest.raises(ValueError, match=r"no key starting with prefix='encoder\.'; its keys "
                                         r"start with: backbone\., neck\., roi_head\."):
        backbone.init_weights()


def test_imagenet_weights_load_strictly_into_dcn_and_plugin_stages(tmp_path):
    """Deformable-conv offsets and plugins are what detection adds to a classification network:
    plain weights leave them at their initialisation (zero offsets), everything else must fit."""
    pytest.importorskip('mmcv.ops')
    plain = MODELS.build(R50)
    plain.init_weights()
    path = tmp_path / 'r50.pth'
    torch.save(plain.state_dict(), path)
    extra = dict(dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, False, True, True),
                 plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                               stages=(False, True, True, True), position='after_conv3')])
    model = MODELS.build(dict(R50, **extra, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in plain.state_dict().items())
    offsets = [v for k, v in ours.items() if '.conv_offset.' in k]
    assert offsets and all(not v.any() for v in offsets)
    # the allowance covers exactly those modules: any other missing key is still refused
    state = torch.load(path, weights_only=True)
    state.pop('layer4.2.conv3.weight')
    torch.save(state, path)
    model = MODELS.build(dict(R50, **extra, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.raises(CheckpointMismatchError, match=r'1 model keys missing from it: '
                                                      r'layer4\.2\.conv3\.weight;?'):
        model.init_weights()


def test_load_pretrained_reads_registered_uri_schemes(tmp_path, r18_file):
    """A URI goes through mmengine's CheckpointLoader (where timm://, ... are registered)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    path, r18 = r18_file
    seen = []

    def load_test_scheme(filename, map_location):
        seen.append(filename)
        return torch.load(path, map_location=map_location)

    CheckpointLoader.register_scheme('mmrftest://', load_test_scheme, force=True)
    try:
        model = MODELS.build(R18)
        fit = load_pretrained(model, 'mmrftest://r18')
    finally:
        CheckpointLoader._schemes.pop('mmrftest://')
    assert seen == ['mmrftest://r18'] and fit.exact
    assert all(torch.equal(model.state_dict()[k], v) for k, v in r18.items())


def test_fit_report_counts_and_lists_the_first_keys():
    model = {f'w{i}': torch.zeros(2) for i in range(8)}
    model['bn.num_batches_tracked'] = torch.zeros(())  # a BN counter: may be absent
    state = {'w0': torch.zeros(2), 'w1': torch.zeros(2), 'w2': torch.zeros(3),
             'extra': torch.zeros(1)}
    fit = compare_state_dicts(model, state)
    assert fit.matched == ['w0', 'w1'] and fit.tolerated == ['bn.num_batches_tracked']
    assert fit.describe(max_listed=2) == (
        '5 model keys missing from it: w3, w4 ... (+3 more); 1 keys the model lacks: extra; '
        '1 shape mismatches: w2 (3,) vs model (2,)')
    assert not fit.exact


# ---- convert() and the convert tool ---------------------------------------------------------
def test_convert_refuses_weights_of_another_architecture(r18_file):
    _, r18 = r18_file
    with pytest.raises(CheckpointMismatchError,
                       match=r"converted as 'resnet50' does not match mmresfamily\.ResNet\("
                             r"depth=50\): \d+ model keys missing from it: layer1\.0\.bn3\..*"
                             r"shape mismatches: layer1\.0\.conv1\.weight \(64, 64, 3, 3\) vs "
                             r"model \(64, 64, 1, 1\)"):
        convert('torchvision', 'resnet50', r18)


def test_convert_refuses_an_empty_state_dict():
    for source, name in (('torchvision', 'resnet50'), ('timm', 'densenet121'),
                         ('mmpretrain', 'densenet121')):
        with pytest.raises(CheckpointMismatchError, match='holds no backbone tensors'):
            convert(source, name, {'state_dict': {}})


def test_convert_fills_batch_counters_missing_from_old_checkpoints(r18_file):
    _, r18 = r18_file
    old = {k: v for k, v in r18.items() if not k.endswith('num_batches_tracked')}
    state_dict, cfg, _ = convert('torchvision', 'resnet18', old)
    MODELS.build(cfg).load_state_dict(state_dict, strict=True)


@pytest.mark.parametrize('content,message', [
    ('r18', r"converted as 'resnet50' does not match .*layer1\.0\.conv3\.weight"),
    ('empty', 'holds no backbone tensors'),
])
def test_convert_tool_exits_non_zero(r18_file, tmp_path, capsys, load_tool, content,
                                     message):
    src = r18_file[0] if content == 'r18' else tmp_path / 'empty.pth'
    if content == 'empty':
        torch.save({}, src)
    with pytest.raises(SystemExit) as exit_info:
        load_tool('convert_weights').main(['torchvision', 'resnet50', str(src),
                                           str(tmp_path / 'out.pth')])
    assert exit_info.value.code != 0
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / 'out.pth').exists()


# ---- files that are not checkpoints ---------------------------------------------------------
def write_bad(kind, path):
    torch.save({'w': torch.arange(1000.)}, path.with_suffix('.ok'))
    good = path.with_suffix('.ok').read_bytes()
    if kind == 'zero bytes':
        path.write_bytes(b'')
    elif kind == 'random bytes':
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == 'truncated zip':
        path.write_bytes(good[:len(good) // 2])
    elif kind == 'truncated legacy pickle':
        torch.save({'w': torch.arange(1000.)}, path, _use_new_zipfile_serialization=False)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == 'broken safetensors header':
        path.write_bytes(struct.pack('<Q', 1 << 40) + b'{"w": {}}')
    elif kind == 'truncated safetensors':
        from safetensors.torch import save_file
        save_file({'w': torch.arange(1000.)}, str(path))
        path.write_bytes(path.read_bytes()[:-100])
    return path


BAD_FILES = {
    'zero bytes': ('bad.pth', r'is empty \(0 bytes\)'),
    'random bytes': ('bad.pth', r'is not a checkpoint: neither a torch zip archive, a legacy '
                                r'torch pickle nor safetensors'),
    'truncated zip': ('bad.pth', r'is a truncated zip archive'),
    'truncated legacy pickle': ('bad.pth', r'is a truncated legacy torch pickle'),
    'broken safetensors header': ('bad.safetensors', r'is a safetensors file with a broken header '
                                  r'\(its length field says 1099511627776 bytes'),
    'truncated safetensors': ('bad.safetensors', r'is a truncated safetensors file'),
}


@pytest.mark.parametrize('kind', list(BAD_FILES))
def test_bad_file_gets_its_own_message_naming_the_path(tmp_path, kind):
    name, message = BAD_FILES[kind]
    path = write_bad(kind, tmp_path / name)
    others = [m for k, (_, m) in BAD_FILES.items() if k != kind]
    for runner_checkpoint in (False, True):
        with pytest.raises(CheckpointFileError) as err:
            load_checkpoint_file(path, runner_checkpoint=runner_checkpoint)
        assert str(err.value).startswith(f'checkpoint {path} ')
        assert re.search(message, str(err.value)), str(err.value)
        assert not any(re.search(m, str(err.value)) for m in others)
        assert 'allow-list' not in str(err.value)


def test_good_files_of_each_format_load(tmp_path):
    from safetensors.torch import save_file
    state = {'w': torch.arange(6.).reshape(2, 3)}
    torch.save(state, tmp_path / 'a.pth')
    torch.save(state, tmp_path / 'b.pth', _use_new_zipfile_serialization=False)
    save_file(state, str(tmp_path / 'c.safetensors'))
    for name in ('a.pth', 'b.pth', 'c.safetensors'):
        assert torch.equal(load_checkpoint_file(tmp_path / name)['w'], state['w'])


def _entry_points():
    """Every loader that reads a checkpoint file for the package or a tool."""
    from mmresfamily.cli import main as cli
    from mmresfamily.publish import main as publish_main
    from mmresfamily.transfer.backbones import backbone_weights
    from mmresfamily.utils.launch import check_checkpoint_matches

    def pretrained(bad, tmp_path):
        load_pretrained(nn.Linear(1, 1), str(bad))

    def test_tool(bad, tmp_path):
        check_checkpoint_matches(nn.Linear(1, 1), str(bad))

    def convert_tool(bad, tmp_path):
        cli(['convert', 'timm', 'resnet50', str(bad), str(tmp_path / 'o')])

    def publish(bad, tmp_path):
        publish_main([str(bad), str(tmp_path / 'out')])

    def coco_transfer(bad, tmp_path):
        backbone_weights('b', bad, nn.Linear(1, 1), tmp_path / 'o')

    return dict(pretrained=pretrained, test=test_tool, convert_weights=convert_tool,
                publish_backbone=publish, coco_transfer=coco_transfer)


@pytest.mark.parametrize('entry', sorted(_entry_points()))
def test_every_loader_says_what_a_bad_file_is(tmp_path, capsys, entry):
    bad = write_bad('random bytes', tmp_path / 'bad.pth')
    with pytest.raises((CheckpointFileError, SystemExit)) as err:
        _entry_points()[entry](bad, tmp_path)
    said = str(err.value) + capsys.readouterr().err
    assert f'checkpoint {bad} is not a checkpoint' in said
    if isinstance(err.value, SystemExit):
        assert err.value.code != 0


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'checkpoint not found: {tmp_path}/nope.pth'):
        load_checkpoint_file(tmp_path / 'nope.pth')
