"""tools/coco_transfer.py: two backbones (scratch vs published weights) on a small quickstart set,
CSV / Markdown / PNG outputs, finished rows skipped, interrupted runs resumed, clear errors, and a
two-process CPU torchrun."""
import csv
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from mmresfamily.transfer.data import evaluable_ann_file

PY = sys.executable
pytest.importorskip('mmdet')

R18 = "dict(type='mmresfamily.ResNet', depth=18)"


@pytest.fixture(scope='module')
def run(run_checked):
    """A command from the repository root, on one thread (the runs are small)."""

    def run_(*args, env=None, check=True):
        return run_checked(*args, env={'OMP_NUM_THREADS': '1', **(env or {})}, check=check,
                           timeout=600)

    return run_


@pytest.fixture(scope='module')
def data(make_quickstart_data):
    return make_quickstart_data(16, 8)


@pytest.fixture(scope='module')
def published(tmp_path_factory, run):
    """A randomly initialised classifier's checkpoint -> tools/publish_backbone.py."""
    from mmresfamily.registry import MODELS
    tmp = tmp_path_factory.mktemp('published')
    torch.manual_seed(1)
    backbone = MODELS.build(dict(type='mmresfamily.ResNet', depth=18))
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, 512)
    torch.save({'state_dict': state, 'meta': {}}, tmp / 'cls.pth')
    run(PY, 'tools/publish_backbone.py', tmp / 'cls.pth', tmp / 'r18_random')
    return next(tmp.glob('r18_random-*.pth'))


def common(data, tmp_path, iters=3):
    return ['--detector', 'faster', '--data-root', data,
            '--iters', iters, '--batch-size', 2, '--image-size', 64,
            '--work-dir', tmp_path / 'wd', '--out', tmp_path / 'docs/ct']


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def log_dirs(work_dir):
    """The timestamped folders mmengine creates, one per Runner built."""
    return sorted(p for p in work_dir.glob('*/2*') if p.is_dir())


@pytest.mark.slow
def test_two_backbones_skip_finished_rows_and_resume(tmp_path, run, data, published):
    args = ['tools/coco_transfer.py', *common(data, tmp_path), '--backbone', 'scratch', R18,
            '--backbone', 'random_pub', R18, published]
    first = run(PY, *args)
    rows = read_csv(tmp_path / 'docs/ct.csv')
    assert [(r['backbone'], r['pretrained']) for r in rows] == [
        ('scratch', 'scratch'), ('random_pub', str(published))]
    for r in rows:
        assert r['detector'] == 'faster' and r['iters'] == '3'
        for m in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75'):
            assert 0.0 <= float(r[m]) <= 1.0, (m, r)
        assert r['segm_mAP'] == ''  # box-only detector
        assert float(r['train_seconds']) > 0
    md = (tmp_path / 'docs/ct.md').read_text()
    assert '| scratch | scratch | faster | 3 |' in md and f'| random_pub | {published} |' in md
    assert (tmp_path / 'docs/ct.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'run 1/2: scratch' in first.stdout and 'run 2/2: random_pub' in first.stdout
    assert '6/6' in first.stdout  # the progress bar reached the end of both runs
    # the published weights were loaded into the backbone, and only for that run
    logs = {p.parent.name: (next(p.glob('*.log'))).read_text() for p in log_dirs(tmp_path / 'wd')}
    assert re.search(r"load_pretrained: ResNet from checkpoint \S+ \(prefix 'backbone\.'\): "
                     r'loaded \d+ tensors; 0 missing, 0 unexpected, 0 shape mismatches',
                     logs['faster_random_pub_3it'])
    assert 'load_pretrained' not in logs['faster_scratch_3it']

    # rerun: both rows are in the CSV -> nothing is built or trained
    before, csv_text = log_dirs(tmp_path / 'wd'), (tmp_path / 'docs/ct.csv').read_text()
    second = run(PY, *args)
    assert 'skip scratch' in second.stdout and 'skip random_pub' in second.stdout
    assert 'nothing to do' in second.stdout
    assert log_dirs(tmp_path / 'wd') == before
    assert (tmp_path / 'docs/ct.csv').read_text() == csv_text

    # a run whose row is missing (interrupted before writing it) resumes from its checkpoint:
    # training is already complete, so it is only evaluated again
    with open(tmp_path / 'docs/ct.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    third = run(PY, *args)
    assert 'skip scratch' in third.stdout and 'run 1/1: random_pub' in third.stdout
    assert 'resumed' in third.stdout
    new = [p for p in log_dirs(tmp_path / 'wd') if p not in before]
    assert [p.parent.name for p in new] == ['faster_random_pub_3it']
    assert 'resumed epoch: 0, iter: 3' in next(new[0].glob('*.log')).read_text()
    scalars = new[0] / 'vis_data/scalars.json'
    trained = [json.loads(line) for line in scalars.read_text().splitlines()
               if 'loss' in line] if scalars.exists() else []
    assert not trained, 'the resumed run trained again'
    rows3 = read_csv(tmp_path / 'docs/ct.csv')
    assert [r['backbone'] for r in rows3] == ['scratch', 'random_pub']
    assert rows3[1]['bbox_mAP'] == rows[1]['bbox_mAP']  # same weights, same evaluation


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, run, data):
    args = ['tools/coco_transfer.py', *common(data, tmp_path, iters=4), '--backbone', 'r18', R18]
    # stands for a run stopped after its 2nd iteration (cfg options are applied last)
    run(PY, *args, '--cfg-options', 'train_cfg.max_iters=2')
    assert (tmp_path / 'wd/faster_r18_4it/iter_2.pth').is_file()
    (tmp_path / 'docs/ct.csv').unlink()  # its row was never written
    second = run(PY, *args)
    assert 'run 1/1: r18 (scratch), faster, 4 iters, resumed' in second.stdout
    assert '4/4' in second.stdout
    last = log_dirs(tmp_path / 'wd')[-1]
    assert 'resumed epoch: 0, iter: 2' in next(last.glob('*.log')).read_text()
    records = [json.loads(line) for line in (last / 'vis_data/scalars.json').read_text()
               .splitlines()]
    assert [r['iter'] for r in records if 'loss' in r] == [3, 4]
    assert [r['iters'] for r in read_csv(tmp_path / 'docs/ct.csv')] == ['4']


@pytest.fixture(scope='module')
def tool(load_tool):
    """tools/coco_transfer.py, whose command line these tests run."""
    return load_tool('coco_transfer')


@pytest.mark.parametrize('extra,message', [
    (['--detector', 'yolo', '--backbone', 'a', R18], "argument --detector: invalid choice: 'yolo'"
     " (choose from 'faster', 'mask', 'retinanet', 'cascade')"),
    (['--backbone', 'a'], '--backbone expects NAME SPEC [CHECKPOINT], got 1 values'),
    (['--backbone', 'a', R18, '--backbone', 'a', R18], "--backbone NAME 'a' is given twice"),
    (['--backbone', 'a', R18, 'missing.pth'], '--backbone a: checkpoint not found: missing.pth'),
    (['--backbone', 'a', 'r999'], "--backbone a: SPEC 'r999' is neither dict(...) nor a backbone "
     'config; known names: dcdc_resnet50, densenet121'),
    (['--backbone', 'a', "dict(type='mmresfamily.ResNot')"],
     "--backbone a: type 'mmresfamily.ResNot' is not an mmresfamily backbone; registered: "),
    (['--backbone', 'a', "dict(type='mmresfamily.ResNet', depth=19)"],
     '--backbone a: cannot build'),
    (['--backbone', 'a', "dict(type=__import__('os'))"], '--backbone a: SPEC is not a literal'),
    (['--backbone', 'a', R18, '--classes', 'Hat'], "--classes: ['Hat'] not among the train "
     "categories: ['T-shirt/top'"),
    (['--backbone', 'a', R18, '--image-size', '64x'], '--image-size must be S or W,H'),
    (['--backbone', 'a', R18, '--iters', '0'], '--iters must be a positive integer, got 0'),
    (['--backbone', 'a', R18, '--train-ann', 'nope.json'], 'COCO files not found (tried: '
     '--train-ann nope.json, --train-img train/images/'),
])
def test_bad_arguments_name_the_argument(tool, data, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        tool.main(['--data-root', str(data), '--work-dir', str(tmp_path / 'wd'),
                   '--out', str(tmp_path / 'ct'), *extra])
    said = str(exc.value.code) + capsys.readouterr().err
    assert message in said
    assert not (tmp_path / 'ct.csv').exists()


def test_checkpoint_that_does_not_fit_is_refused(tool, data, tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(64, 3, 3, 3)}}, bad)
    with pytest.raises(SystemExit, match=r'--backbone a: checkpoint .*bad.pth does not match the '
                       r'backbone: \d+ model keys missing .*conv1.weight \(64, 3, 3, 3\) vs model '
                       r'\(64, 3, 7, 7\)'):
        tool.main(['--data-root', str(data), '--backbone', 'a', R18, str(bad), '--iters', '1',
                   '--work-dir', str(tmp_path / 'wd'), '--out', str(tmp_path / 'ct')])


def test_annotation_ids_from_0_are_evaluated_on_a_renumbered_copy(tmp_path):
    """pycocotools treats a match to annotation id 0 as no match (labelme2coco starts at 0)."""
    coco = {'images': [{'id': 0, 'file_name': 'a.jpg', 'height': 8, 'width': 8}],
            'categories': [{'id': 1, 'name': 'x'}],
            'annotations': [{'id': i, 'image_id': 0, 'category_id': 1, 'bbox': [0, 0, 4, 4],
                             'area': 16, 'iscrowd': 0} for i in (0, 1)]}
    (tmp_path / 'zero.json').write_text(json.dumps(coco))
    fixed = Path(evaluable_ann_file(tmp_path, 'zero.json', tmp_path))
    assert [a['id'] for a in json.loads(fixed.read_text())['annotations']] == [1, 2]
    assert json.loads((tmp_path / 'zero.json').read_text()) == coco  # the input is untouched
    coco['annotations'][0]['id'] = 5
    (tmp_path / 'one.json').write_text(json.dumps(coco))
    assert evaluable_ann_file(tmp_path, 'one.json', tmp_path) == 'one.json'


def test_data_root_missing(tool, tmp_path):
    with pytest.raises(SystemExit, match='--data-root: not a directory: .*nowhere'):
        tool.main(['--data-root', str(tmp_path / 'nowhere'), '--backbone', 'a', R18])


@pytest.mark.slow
@pytest.mark.dist
def test_torchrun_two_cpu_processes(tmp_path, run, data):
    """tools/dist_coco_transfer.sh: both ranks train the same row, rank 0 alone writes."""
    result = run('bash', 'tools/dist_coco_transfer.sh', 2,
                 *common(data, tmp_path, iters=2), '--backbone', 'r18', R18,
                 env={'PYTHON': PY, 'PORT': '29631'})
    rows = read_csv(tmp_path / 'docs/ct.csv')
    assert [r['backbone'] for r in rows] == ['r18']
    assert result.stdout.count('[coco_transfer] wrote') == 1
    log = next(log_dirs(tmp_path / 'wd')[0].glob('*.log')).read_text()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # world size 2
    assert "type='MMDistributedDataParallel'" in log
    # the row holds what the distributed evaluation logged (both ranks' images, one result)
    assert f"coco/bbox_mAP: {rows[0]['bbox_mAP']}" in log
