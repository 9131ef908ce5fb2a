"""Checkpoint URIs, with the network off: fixture caches in the exact timm (Hugging Face hub
cache), torchvision (torch hub checkpoints) and official layouts, loaded through mmengine's
CheckpointLoader into our backbones and compared with the source code's own model on the same
weights; tampered and absent files are refused with errors that say what to do."""
import dataclasses
import socket
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from mmengine.runner import CheckpointLoader
from safetensors.torch import save_file

from mmresfamily import weights, zoo
from mmresfamily.registry import MODELS
from mmresfamily.testing import assert_features_close, randomize_, stage_outputs

X = torch.randn(2, 3, 64, 64)


@pytest.fixture(autouse=True)
def network_off_and_private_caches(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError('network disabled in tests')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    for var in ('MMRF_WEIGHTS', 'MMRF_OFFLINE', 'HF_HUB_OFFLINE'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('MMRF_CACHE', str(tmp_path / 'mmrf'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))


def hf_cache_file(hub_id, state_dict, tmp_path) -> Path:
    """Write `state_dict` where huggingface_hub keeps `timm/<hub_id>`'s model.safetensors."""
    repo = tmp_path / 'hf' / f'models--timm--{hub_id}'
    staged = tmp_path / 'staged.safetensors'
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(staged))
    sha = weights.sha256_of(staged)
    commit = 'a' * 40
    (repo / 'blobs').mkdir(parents=True)
    (repo / 'refs').mkdir()
    (repo / 'snapshots' / commit).mkdir(parents=True)
    staged.rename(repo / 'blobs' / sha)
    (repo / 'refs' / 'main').write_text(commit)
    link = repo / 'snapshots' / commit / 'model.safetensors'
    link.symlink_to(Path('../..') / 'blobs' / sha)
    return link


def hub_file(folder: Path, stem: str, state_dict) -> Path:
    """A torch-hub style file `<stem>-<sha256[:8]>.pth` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / 'staged.pth'
    torch.save(state_dict, staged)
    path = folder / f'{stem}-{weights.sha256_of(staged)[:8]}.pth'
    staged.rename(path)
    return path


def table_source_as(monkeypatch, name, scheme, path: Path):
    """Point a table row's `scheme` source at the fixture file (its real hash cannot match)."""
    model = zoo.MODELS[name]
    sources = tuple(dataclasses.replace(s, filename=path.name, url=f'https://example.invalid/'
                                                                       f'{path.name}')
                    if s.scheme == scheme else s for s in model.sources)
    monkeypatch.setitem(zoo.MODELS, name, dataclasses.replace(model, sources=sources))


def build_loaded(checkpoint):
    ours = MODELS.build(checkpoint['meta']['backbone_cfg']).eval()
    ours.load_state_dict(checkpoint['state_dict'], strict=True)
    return ours


def timm_taps(ref):
    return [info['module'] for info in ref.feature_info[1:]]


# ---- timm:// ------------------------------------------------------------------------------------
def test_timm_uri_loads_the_hub_cache_file_with_timms_features(tmp_path):
    ref = randomize_(timm.create_model('resnet18', pretrained=False), seed=1).eval()
    link = hf_cache_file('resnet18.a1_in1k', ref.state_dict(), tmp_path)
    checkpoint = CheckpointLoader.load_checkpoint('timm://resnet18.a1_in1k')
    meta = checkpoint['meta']
    assert meta['uri'] == 'timm://resnet18.a1_in1k'
    assert meta['sha256'] == link.resolve().name == weights.sha256_of(link)
    ours = build_loaded(checkpoint)
    # the reference is timm itself reading the same file
    timm_loaded = timm.create_model('resnet18', pretrained=True,
                                    pretrained_cfg_overlay=dict(file=str(link))).eval()
    with torch.no_grad():
        assert_features_close(ours(X), stage_outputs(timm_loaded, timm_taps(timm_loaded), X))


def test_second_load_reads_the_converted_cache(tmp_path, monkeypatch):
    ref = timm.create_model('resnet18', pretrained=False)
    hf_cache_file('resnet18.a1_in1k', ref.state_dict(), tmp_path)
    first = weights.fetch('timm://resnet18.a1_in1k')[0]
    assert first.parent == weights.cache_dir() / 'converted'

    def no_conversion(*args):
        raise AssertionError('converted again')
    monkeypatch.setattr('mmresfamily.converters.convert', no_conversion)
    assert CheckpointLoader.load_checkpoint('timm://resnet18.a1_in1k')['meta']['sha256']


def test_tampered_hub_blob_is_refused_naming_both_hashes(tmp_path):
    ref = timm.create_model('resnet18', pretrained=False)
    link = hf_cache_file('resnet18.a1_in1k', ref.state_dict(), tmp_path)
    blob = link.resolve()
    expected = blob.name
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(weights.ChecksumError) as err:
        CheckpointLoader.load_checkpoint('timm://resnet18.a1_in1k')
    assert expected in str(err.value) and weights.sha256_of(blob) in str(err.value)


def test_absent_timm_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    # offline as a user would declare it (the hub's own retries on a dead network take ~20 s)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(weights.WeightsNotFoundError) as err:
        CheckpointLoader.load_checkpoint('timm://resnest50d.in1k')
    message = str(err.value)
    for expected in ('timm://resnest50d.in1k', '$MMRF_WEIGHTS: not set', 'library cache',
                     'Hugging Face cache', 'python -m mmresfamily fetch timm://resnest50d.in1k',
                     str(weights.cache_dir() / 'resnest50d.in1k.safetensors')):
        assert expected in message, (expected, message)
    assert 'Traceback' not in message


def test_unreachable_network_is_reported_without_a_traceback():
    with pytest.raises(weights.WeightsNotFoundError) as err:
        CheckpointLoader.load_checkpoint('official://hardnet68')
    message = str(err.value)
    assert 'download failed' in message and 'network disabled in tests' in message
    assert 'https://ping-chao.com/hardnet/hardnet68-5d684880.pth' in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_offline_flag_skips_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv('MMRF_OFFLINE', '1')
    with pytest.raises(weights.WeightsNotFoundError, match=r'\(offline\)'):
        CheckpointLoader.load_checkpoint('official://resnest50')


def test_user_folder_comes_first(tmp_path, monkeypatch):
    ref = timm.create_model('resnet18', pretrained=False)
    folder = tmp_path / 'mine'
    folder.mkdir()
    save_file(ref.state_dict(), str(folder / 'resnet18.a1_in1k.safetensors'))
    monkeypatch.setenv('MMRF_WEIGHTS', str(folder))
    checkpoint = CheckpointLoader.load_checkpoint('timm://resnet18.a1_in1k')
    assert checkpoint['meta']['source_file'] == str(folder / 'resnet18.a1_in1k.safetensors')
    build_loaded(checkpoint)


# ---- torchvision:// and mmrf:// through torchvision ----------------------------------------------
@pytest.fixture
def torchvision_resnet18(tmp_path, monkeypatch):
    ref = randomize_(torchvision.models.resnet18(weights=None), seed=2).eval()
    path = hub_file(tmp_path / 'torch' / 'hub' / 'checkpoints', 'resnet18', ref.state_dict())
    urls = {'resnet18': f'https://example.invalid/{path.name}'}
    monkeypatch.setattr('mmengine.runner.checkpoint.get_torchvision_models', lambda: urls)
    table_source_as(monkeypatch, 'resnet18', 'torchvision', path)
    return ref, path


def tv_taps(ref):
    return [f'layer{i}' for i in range(1, 5)]


@pytest.mark.parametrize('uri', ['torchvision://resnet18', 'mmrf://resnet18'])
def test_torchvision_weights_give_torchvisions_features(torchvision_resnet18, uri):
    ref, path = torchvision_resnet18
    checkpoint = CheckpointLoader.load_checkpoint(uri)
    assert checkpoint['meta']['sha256'] == weights.sha256_of(path)
    ours = MODELS.build(dict(type='mmresfamily.ResNet', depth=18)).eval()
    state = {k: v for k, v in checkpoint['state_dict'].items() if not k.startswith('fc.')}
    ours.load_state_dict(state, strict=True)
    with torch.no_grad():
        assert_features_close(ours(X), stage_outputs(ref, tv_taps(ref), X))


def test_torchvision_scheme_refuses_a_file_not_matching_its_name(torchvision_resnet18):
    _, path = torchvision_resnet18
    torch.save({'conv1.weight': torch.zeros(1)}, path)  # same name, other content
    with pytest.raises(weights.ChecksumError, match=path.name.split('-')[1].split('.')[0]):
        CheckpointLoader.load_checkpoint('torchvision://resnet18')


def test_mmrf_converts_torchvision_densenet(tmp_path, monkeypatch):
    ref = randomize_(torchvision.models.densenet121(weights=None), seed=3).eval()
    path = hub_file(tmp_path / 'torch' / 'hub' / 'checkpoints', 'densenet121', ref.state_dict())
    table_source_as(monkeypatch, 'densenet121', 'torchvision', path)
    ours = build_loaded(CheckpointLoader.load_checkpoint('mmrf://densenet121'))
    taps = ['features.denseblock1', 'features.denseblock2', 'features.denseblock3',
            'features.norm5']
    with torch.no_grad():
        expected = stage_outputs(ref, taps, X)
        expected[-1] = torch.relu(expected[-1])  # our last stage ends with the final norm + relu
        assert_features_close(ours(X), expected)


# ---- official:// --------------------------------------------------------------------------------
def test_official_resnest_equals_timms_port(tmp_path, monkeypatch):
    """The authors' ResNeSt layout is what timm ported, so timm's model is the reference."""
    ref = randomize_(timm.create_model('resnest50d', pretrained=False), seed=4).eval()
    path = hub_file(tmp_path / 'mmrf' / 'weights' / 'official', 'resnest50', ref.state_dict())
    table_source_as(monkeypatch, 'resnest50', 'official', path)
    checkpoint = CheckpointLoader.load_checkpoint('official://resnest50')
    assert checkpoint['meta']['converter'] == 'official:resnest50'
    with torch.no_grad():
        assert_features_close(build_loaded(checkpoint)(X), stage_outputs(ref, timm_taps(ref), X))


def test_manual_release_says_where_to_download_it(tmp_path, monkeypatch):
    with pytest.raises(weights.WeightsNotFoundError) as err:
        CheckpointLoader.load_checkpoint('official://rednet26')
    assert 'd-li14/involution' in str(err.value) and 'rednet26.pth' in str(err.value)
    # placed by hand, it loads (the release is an mmcls checkpoint: `backbone.` + head)
    ours = MODELS.build(dict(type='mmresfamily.RedNet', depth=26))
    folder = tmp_path / 'mine'
    folder.mkdir()
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in ours.state_dict().items()},
                               'head.fc.weight': torch.zeros(1000, 2048)}},
               folder / 'rednet26.pth')
    monkeypatch.setenv('MMRF_WEIGHTS', str(folder))
    checkpoint = CheckpointLoader.load_checkpoint('official://rednet26')
    assert len(checkpoint['meta']['sha256']) == 64  # no published hash: recorded, not checked
    build_loaded(checkpoint)


# ---- table names -------------------------------------------------------------------------------
def test_unknown_and_weightless_names_are_clear():
    with pytest.raises(KeyError, match=r"'resnet5' is not in the model table.*resnet50"):
        CheckpointLoader.load_checkpoint('mmrf://resnet5')
    with pytest.raises(KeyError, match=r'dcdc_resnet50 has no published weights'):
        CheckpointLoader.load_checkpoint('mmrf://dcdc_resnet50')
    with pytest.raises(KeyError, match=r"resnet18.*has no official weights.*torchvision, timm"):
        CheckpointLoader.load_checkpoint('official://resnet18')


def test_pretrained_init_cfg_takes_a_uri(tmp_path):
    ref = timm.create_model('resnet18', pretrained=False)
    hf_cache_file('resnet18.a1_in1k', ref.state_dict(), tmp_path)
    model = MODELS.build(dict(type='mmresfamily.ResNet', depth=18, init_cfg=dict(
        type='Pretrained', checkpoint='timm://resnet18.a1_in1k')))
    model.init_weights()
    torch.testing.assert_close(model.conv1.weight, ref.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.layer4[1].bn2.running_var, ref.layer4[1].bn2.running_var,
                               rtol=0, atol=0)


# ---- the acceptance run: tools/train.py starting from a URI --------------------------------------
def train_log(tmp_path, data_root, uri, *options):
    """Training as tools/train.py runs it (in this process, network off): the quickstart Faster
    R-CNN for one iteration, its backbone initialised from `uri`; returns the run's log."""
    from mmresfamily.train import main as train
    work = tmp_path / 'work'
    train([
        'configs/quickstart/faster-rcnn_r18_fpn_quickstart.py', '--work-dir', str(work),
        '--cfg-options', f'data_root={data_root}/', 'train_cfg.max_iters=1',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=100',
        'train_dataloader.batch_size=2', 'model.backbone.init_cfg.type=Pretrained',
        f'model.backbone.init_cfg.checkpoint={uri}', *options])
    return '\n'.join(p.read_text() for p in work.rglob('*.log'))


@pytest.mark.parametrize('scheme', ['timm', 'torchvision', 'official'])
def test_train_starts_from_a_uri(tmp_path, monkeypatch, make_quickstart_data, scheme):
    options = ()
    if scheme == 'timm':
        ref = timm.create_model('resnet18', pretrained=False)
        sha = hf_cache_file('resnet18.a1_in1k', ref.state_dict(), tmp_path).resolve().name
        uri = 'timm://resnet18.a1_in1k'
    elif scheme == 'torchvision':
        ref = torchvision.models.resnet18(weights=None)
        path = hub_file(tmp_path / 'torch' / 'hub' / 'checkpoints', 'resnet18', ref.state_dict())
        urls = {'resnet18': f'https://example.invalid/{path.name}'}
        monkeypatch.setattr('mmengine.runner.checkpoint.get_torchvision_models', lambda: urls)
        sha, uri = weights.sha256_of(path), 'torchvision://resnet18'
    else:  # the authors' ResNeSt-50 release layout, in the quickstart detector
        ref = timm.create_model('resnest50d', pretrained=False)
        path = hub_file(tmp_path / 'mmrf' / 'weights' / 'official', 'resnest50', ref.state_dict())
        table_source_as(monkeypatch, 'resnest50', 'official', path)
        sha, uri = weights.sha256_of(path), 'official://resnest50'
        options = ('model.backbone.type=mmresfamily.ResNeSt', 'model.backbone.depth=50',
                   'model.neck.in_channels=[256,512,1024,2048]')
    log = train_log(tmp_path, make_quickstart_data(4, 2), uri, *options)
    assert f'{uri}: ' in log and f'(sha256 {sha})' in log
    assert f'from checkpoint {uri}: loaded' in log and '; 0 missing, 0 unexpected' in log
