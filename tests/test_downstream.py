"""Downstream: quickstart data, train/test tools for det/seg/cls, distributed on CPU, resume
after kill -9, and clear errors."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mmresfamily.utils.launch import read_scalars

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
pytest.importorskip('mmdet')
pytestmark = pytest.mark.usefixtures('fashion_mnist')


@pytest.fixture(scope='module')
def run(run_checked):
    """Commands (tools/*.py, tools/*.sh) from the repository root."""
    return run_checked


@pytest.fixture(scope='module')
def quickstart_data(make_quickstart_data):
    return make_quickstart_data(400, 40)


def _digest(folder: Path):
    h = hashlib.sha256()
    for path in sorted(folder.rglob('*')):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.mark.slow
def test_quickstart_data_is_deterministic_and_consistent(tmp_path, run, quickstart_data):
    run(PY, 'tools/make_quickstart_data.py', '--out', tmp_path / 'a', '--train', 400,
        '--val', 40)
    assert _digest(tmp_path / 'a') == _digest(quickstart_data)
    import cv2
    from pycocotools import mask as mask_utils
    coco = json.loads((quickstart_data / 'annotations/instances_train.json').read_text())
    assert len(coco['categories']) == 10 and len(coco['images']) == 400
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    for image in coco['images'][:50]:
        semantic = cv2.imread(str(quickstart_data / 'train/seg' / image['file_name']), 0)
        for ann in by_image[image['id']]:
            m = mask_utils.decode(dict(ann['segmentation'], counts=ann['segmentation']
                                       ['counts'].encode())).astype(bool)
            assert m.sum() == ann['area']
            ys, xs = np.nonzero(m)
            assert [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()] == \
                ann['bbox']
            # the class map labels the instance's pixels with its class
            assert (semantic[m] == ann['category_id']).all()


def _metric(work_dir: Path, key: str) -> float:
    return [r for r in read_scalars(work_dir) if key in r][-1][key]


@pytest.mark.slow
@pytest.mark.parametrize('config,metric,iters,margin', [
    ('configs/quickstart/faster-rcnn_r18_fpn_quickstart.py', 'coco/bbox_mAP_50', 150, 0.1),
    ('configs/quickstart/fpn_r18_quickstart-seg.py', 'mIoU', 120, 5.0),
])
def test_quickstart_training_beats_untrained(tmp_path, run, quickstart_data, config, metric,
                                             iters, margin):
    """Shortened quickstart runs: the trained model scores clearly above the same model at init."""
    common = [f'data_root={quickstart_data}/', 'default_hooks.logger.interval=10']
    run(PY, 'tools/train.py', config, '--work-dir', tmp_path / 'untrained', '--cfg-options',
        *common, 'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
        'optim_wrapper.optimizer.lr=0.0')
    run(PY, 'tools/train.py', config, '--work-dir', tmp_path / 'trained', '--cfg-options',
        *common, f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}')
    untrained = _metric(tmp_path / 'untrained', metric)
    trained = _metric(tmp_path / 'trained', metric)
    assert trained >= untrained + margin, (metric, untrained, trained)


CLS_TEST_CONFIG = '''
_base_ = ['{root}/configs/quickstart/cls_r18_fashion-mnist.py']
custom_imports = dict(imports=['mmresfamily', 'mmresfamily.datasets.mmpretrain_fashion_mnist',
                               '_downstream_hooks'], allow_failed_imports=False)
train_dataloader = dict(batch_size={batch}, dataset=dict(num_samples=512, pipeline=[
    dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')]))
val_dataloader = dict(dataset=dict(num_samples=256))
model = dict(backbone=dict(depth=18, norm_eval=True))  # frozen BN statistics: rank-independent
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0))
param_scheduler = []
train_cfg = dict(max_iters={iters}, val_interval=100000)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
custom_hooks = [dict(type='RecordRunHook', out_dir='{out}')]
randomness = dict(seed=0, deterministic=True)
'''


def _cls_config(tmp_path, name, batch, iters):
    path = tmp_path / f'{name}.py'
    path.write_text(CLS_TEST_CONFIG.format(root=ROOT, batch=batch, iters=iters,
                                           out=tmp_path / name))
    return path


def _losses(folder: Path, rank=0):
    lines = (folder / f'loss_rank{rank}.jsonl').read_text().splitlines()
    return {r['iter']: r['loss'] for r in map(json.loads, lines)}


HOOK_ENV = {'PYTHONPATH': f'{ROOT / "tests"}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'}


@pytest.mark.slow
@pytest.mark.dist
def test_torchrun_two_cpu_processes_match_one_process(tmp_path, run):
    iters = 4
    single = _cls_config(tmp_path, 'single', batch=16, iters=iters)
    dist = _cls_config(tmp_path, 'dist', batch=8, iters=iters)
    run(PY, 'tools/train.py', single, '--work-dir', tmp_path / 'wd_single', env=HOOK_ENV)
    run('bash', 'tools/dist_train.sh', dist, 2, '--work-dir', tmp_path / 'wd_dist',
        env={**HOOK_ENV, 'PYTHON': PY, 'PORT': '29611'})
    w0 = torch.load(tmp_path / 'dist/weights_rank0.pth')
    w1 = torch.load(tmp_path / 'dist/weights_rank1.pth')
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f'ranks disagree on {k}'
    one = _losses(tmp_path / 'single')
    two = {i: (a + b) / 2 for (i, a), b in zip(_losses(tmp_path / 'dist', 0).items(),
                                               _losses(tmp_path / 'dist', 1).values())}
    assert sorted(one) == sorted(two) == list(range(1, iters + 1))
    # same global batch, mean losses: equal up to float summation order
    for i in one:
        assert abs(one[i] - two[i]) <= 1e-4 * abs(one[i]), (i, one[i], two[i])
    ws = torch.load(tmp_path / 'single/weights_rank0.pth')
    for k in ws:
        torch.testing.assert_close(w0[k], ws[k], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_kill_9_then_resume_continues_exactly(tmp_path, run):
    iters = 10
    config = _cls_config(tmp_path, 'run', batch=16, iters=iters)
    ref_config = _cls_config(tmp_path, 'ref', batch=16, iters=iters)
    run(PY, 'tools/train.py', ref_config, '--work-dir', tmp_path / 'wd_ref', env=HOOK_ENV)
    reference = _losses(tmp_path / 'ref')

    work = tmp_path / 'wd_run'
    proc = subprocess.Popen([PY, 'tools/train.py', str(config), '--work-dir', str(work)],
                            cwd=ROOT, env={**os.environ, **HOOK_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (work / 'iter_4.pth').exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'training finished before it could be killed'
    last = (work / 'last_checkpoint').read_text().strip()
    resumed_from = int(Path(last).stem.split('_')[1])
    assert resumed_from < iters
    (tmp_path / 'run' / 'loss_rank0.jsonl').unlink()
    run(PY, 'tools/train.py', config, '--work-dir', work, '--resume', env=HOOK_ENV)
    resumed = _losses(tmp_path / 'run')
    assert min(resumed) == resumed_from + 1, 'training restarted instead of resuming'
    assert resumed[resumed_from + 1] == reference[resumed_from + 1]
    assert all(resumed[i] == reference[i] for i in resumed)


@pytest.mark.slow
def test_clear_errors(tmp_path, run, quickstart_data):
    config = 'configs/quickstart/faster-rcnn_r18_fpn_quickstart.py'
    result = run(PY, 'tools/train.py', config, '--cfg-options',
                 f'data_root={tmp_path}/nowhere/', check=False)
    assert result.returncode != 0
    assert 'dataset path not found' in result.stderr and 'nowhere' in result.stderr

    bad = tmp_path / 'bad_backbone.py'
    bad.write_text(f"_base_ = ['{ROOT / config}']\n"
                   "model = dict(backbone=dict(type='mmresfamily.ResNot'))\n")
    result = run(PY, 'tools/train.py', bad, '--work-dir', tmp_path / 'wd_bad',
                 '--cfg-options', f'data_root={quickstart_data}/', check=False)
    assert result.returncode != 0
    assert "model.backbone.type='mmresfamily.ResNot' is not an mmresfamily model" in \
        result.stderr and 'ResNeSt' in result.stderr

    ckpt = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(3, 3, 7, 7)}}, ckpt)
    result = run(PY, 'tools/test.py', config, ckpt, '--work-dir', tmp_path / 'wd_test',
                 '--cfg-options', f'data_root={quickstart_data}/', check=False)
    assert result.returncode != 0
    assert 'does not match the model' in result.stderr
    assert 'backbone.conv1.weight (3, 3, 7, 7) vs model (64, 3, 7, 7)' in result.stderr


@pytest.mark.slow
def test_publish_backbone_loads_into_detector_backbone(tmp_path, run):
    """A classifier trained by tools/train.py -> backbone-only weights with a hash suffix ->
    loaded by a detection backbone's init_cfg Pretrained(prefix='backbone.') with no key missing."""
    config = _cls_config(tmp_path, 'pub', batch=16, iters=2)
    run(PY, 'tools/train.py', config, '--work-dir', tmp_path / 'wd', env=HOOK_ENV)
    out = run(PY, 'tools/publish_backbone.py', tmp_path / 'wd/iter_2.pth',
              tmp_path / 'published/r18_fmnist').stdout
    published = next((tmp_path / 'published').glob('r18_fmnist-*.pth'))
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.stem.endswith(digest[:8]) and digest in out
    saved = torch.load(published, weights_only=True)  # plain tensors: no allow-list needed
    assert all(k.startswith('backbone.') for k in saved['state_dict'])

    from mmresfamily.registry import MODELS
    backbone = MODELS.build(dict(type='mmresfamily.ResNet', depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=str(published), prefix='backbone.')))
    backbone.init_weights()
    ours = backbone.state_dict()
    loaded = {k[len('backbone.'):]: v for k, v in saved['state_dict'].items()}
    assert set(ours) == set(loaded), 'missing or unexpected keys'
    for k, v in loaded.items():
        assert torch.equal(ours[k], v), k


@pytest.mark.slow
@pytest.mark.dist
def test_dist_test_two_cpu_processes(tmp_path, run):
    """tools/dist_test.sh on CPU: the checkpoint check sees through the DDP wrapper and both
    ranks evaluate; the metric equals a single-process test of the same checkpoint."""
    config = _cls_config(tmp_path, 'dt', batch=16, iters=2)
    run(PY, 'tools/train.py', config, '--work-dir', tmp_path / 'wd', env=HOOK_ENV)
    ckpt = tmp_path / 'wd/iter_2.pth'
    single = run(PY, 'tools/test.py', config, ckpt, '--work-dir', tmp_path / 'wd1',
                 env=HOOK_ENV).stdout
    dist = run('bash', 'tools/dist_test.sh', config, ckpt, 2, '--work-dir', tmp_path / 'wd2',
               env={**HOOK_ENV, 'PYTHON': PY, 'PORT': '29612'}).stdout
    metric = [line for line in single.splitlines() if 'accuracy/top1' in line]
    assert metric and metric[-1] in dist
