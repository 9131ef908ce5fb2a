"""ImageNet pretraining configs (configs/pretrain): every family builds and computes a loss, a
config trains through tools/train.py on a tiny fake ImageNet, each "bag of tricks" switch takes
effect, and knowledge distillation (mmresfamily.pretrain) behaves."""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmpretrain')
from mmengine.registry import init_default_scope  # noqa: E402
from torch.nn.modules.batchnorm import _BatchNorm  # noqa: E402

from mmresfamily.models.backbones.preresnet import PreActBasicBlock, PreActBottleneck  # noqa: E402
from mmresfamily.models.backbones.resnet import BasicBlock, ResBlock  # noqa: E402
from mmresfamily.train import main as train_main  # noqa: E402
from mmresfamily.utils.launch import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = ROOT / 'configs/pretrain'
BASELINE = PRETRAIN / 'resnet/resnet50_8xb32_in1k.py'
TRICKS = PRETRAIN / 'resnet/resnet50_8xb32-tricks_in1k.py'
KD = PRETRAIN / 'resnet/resnet50_8xb32-tricks-kd_in1k.py'
# family config -> (backbone class, has residual blocks)
FAMILIES = {
    'resnet/resnet50_8xb32_in1k.py': ('ResNet', True),
    'resnet/resnet152_8xb32_in1k.py': ('ResNet', True),
    'resnetv1c/resnetv1c50_8xb32_in1k.py': ('ResNetV1c', True),
    'resnetv1d/resnetv1d50_8xb32_in1k.py': ('ResNetV1d', True),
    'resnext/resnext50-32x4d_8xb32_in1k.py': ('ResNeXt', True),
    'resnest/resnest50_8xb32_in1k.py': ('ResNeSt', True),
    'res2net/res2net50-w26-s4_8xb32_in1k.py': ('Res2Net', True),
    'preresnet/preresnet50_8xb32_in1k.py': ('PreResNet', True),
    'resnet-highway/resnet50-highway_8xb32_in1k.py': ('ResNet', True),
    'densenet/densenet121_8xb32_in1k.py': ('DenseNet', False),
    'dpn/dpn92_8xb32_in1k.py': ('DPN', False),  # residual path, but no zero_init_residual option
    'hardnet/hardnet68_8xb32_in1k.py': ('HarDNet', False),
    'rednet/rednet50_8xb32_in1k.py': ('RedNet', True),
    'dcdcresnet/dcdc-resnet50_8xb32_in1k.py': ('DCDCResNet', True),
}
TRICK_LEAVES = {'resnet/resnet50_8xb32-tricks_in1k.py', 'resnet/resnet50_8xb32-tricks-kd_in1k.py',
                'resnetv1d/resnetv1d50_8xb32-tricks_in1k.py'}


def build_model(model_cfg):
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    return MODELS.build(copy.deepcopy(model_cfg))


def make_batch(labels, size=64):
    from mmpretrain.structures import DataSample
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in labels],
                data_samples=[DataSample().set_gt_label(label) for label in labels])


def residual_branch_ends(backbone):
    """The last scale of each residual branch: norm3/norm2 weight, or (pre-activation) the conv."""
    ends = []
    for m in backbone.modules():
        if isinstance(m, PreActBottleneck):
            ends.append(m.conv3.weight)
        elif isinstance(m, PreActBasicBlock):
            ends.append(m.conv2.weight)
        elif isinstance(m, BasicBlock):
            ends.append(m.norm2.weight)
        elif isinstance(m, ResBlock):
            ends.append(m.norm3.weight)
    return ends


def test_every_pretrain_leaf_is_covered_and_shares_the_imagenet_setup():
    # fashion-mnist/: the 32x32 CPU runs of README's table, not ImageNet configs
    leaves = {p.relative_to(PRETRAIN).as_posix() for p in PRETRAIN.rglob('*.py')
              if '_base_' not in p.parts and 'fashion-mnist' not in p.parts}
    assert leaves == set(FAMILIES) | TRICK_LEAVES
    for name in sorted(leaves):
        cfg = load_config(str(PRETRAIN / name))
        assert cfg.default_scope == 'mmpretrain'
        assert cfg.model.neck.type == 'GlobalAveragePooling'
        assert (cfg.model.head.type, cfg.model.head.num_classes) == ('LinearClsHead', 1000)
        train, val = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
        assert (train.type, train.ann_file, train.data_prefix) == ('ImageNet', 'meta/train.txt',
                                                                    'train')
        assert (val.ann_file, val.data_prefix) == ('meta/val.txt', 'val')
        assert [(t.type, t.get('scale'), t.get('crop_size')) for t in train.pipeline[1:3]] == [
            ('RandomResizedCrop', 224, None), ('RandomFlip', None, None)]
        assert [(t.type, t.get('scale'), t.get('crop_size')) for t in val.pipeline[1:3]] == [
            ('ResizeEdge', 256, None), ('CenterCrop', None, 224)]
        assert cfg.optim_wrapper.optimizer.type == 'SGD' and cfg.train_cfg.max_epochs == 100
        assert cfg.model.backbone.init_cfg is None and cfg.model.backbone.frozen_stages == -1


# ---- leaves keep their base's backbone --------------------------------------------------------
def classifier_changes():
    """What _base_/imagenet_cls.py lets a leaf change in a detection backbone (cls_*backbone)."""
    from mmengine.config import Config
    cls = Config.fromfile(str(PRETRAIN / '_base_/imagenet_cls.py'))
    return {k for name in ('cls_backbone', 'cls_res_backbone', 'cls_preact_backbone')
            for k in cls[name]}


def row_backbone(backbone: dict):
    """(name, detection backbone) of the table row `backbone` builds: the most specific row
    whose arguments it has, as configs/_base_/backbones/ROW.py writes it."""
    from mmengine.config import Config

    from mmresfamily import zoo
    from mmresfamily.configgen import backbone_base
    changes = classifier_changes()
    rows = [m for m in zoo.MODELS.values() if all(backbone.get(k) == v for k, v in
                                                  m.backbone_cfg.items() if k not in changes)]
    assert rows, f'no table row has the arguments of {backbone}'
    row = max(rows, key=lambda m: len(m.backbone_cfg))
    det = Config.fromstring(backbone_base(row), '.py').backbone_det.to_dict()
    det.pop('_delete_')
    return row.name, det


def undone(backbone: dict) -> dict:
    """{argument: (the row's value, the leaf's)} for what a leaf's backbone changes in its
    row's, beyond the classifier changes ('unset': not given)."""
    _, det = row_backbone(backbone)
    return {k: (det.get(k, 'unset'), backbone.get(k, 'unset')) for k in set(det) | set(backbone)
            if det.get(k, 'unset') != backbone.get(k, 'unset') and k not in classifier_changes()}


@pytest.mark.parametrize('name', sorted(set(FAMILIES) | TRICK_LEAVES))
def test_leaf_keeps_its_rows_backbone_but_the_classifier_changes(name):
    """A leaf pretrains a table row: every backbone argument (norm included) is the one the
    row's detection / segmentation configs build, but for imagenet_cls's classifier changes."""
    backbone = load_config(str(PRETRAIN / name)).model.backbone.to_dict()
    assert undone(backbone) == {}
    assert (backbone['out_indices'], backbone['frozen_stages'], backbone['norm_eval'],
            backbone['init_cfg']) == ((3, ), -1, False, None)


def test_a_leaf_that_undoes_its_base_is_caught():
    """The control for the test above: a DPN-92 leaf that lost its base's BN eps."""
    backbone = load_config(str(PRETRAIN / 'dpn/dpn92_8xb32_in1k.py')).model.backbone.to_dict()
    plain_bn = dict(type='BN', requires_grad=True)
    assert undone(dict(backbone, norm_cfg=plain_bn)) == {
        'norm_cfg': (dict(plain_bn, eps=1e-3), plain_bn)}


@pytest.mark.parametrize('name', sorted(p.name for p in (PRETRAIN / 'fashion-mnist').glob('*.py')))
def test_fashion_mnist_leaf_keeps_its_base_backbone_settings(name):
    """A leaf replaces the base's ResNet-18 (`_delete_`: families take different arguments) but
    keeps every other setting of the base's backbone."""
    base = load_config(str(PRETRAIN / 'fashion-mnist/_base_/fmnist-32px_0.25ep.py'))
    kept = {k: v for k, v in base.model.backbone.items() if k not in ('type', 'depth')}
    assert kept, 'the base backbone sets more than its architecture'
    backbone = load_config(str(PRETRAIN / 'fashion-mnist' / name)).model.backbone
    assert {k: backbone.get(k, 'unset') for k in kept} == kept


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_family_builds_and_computes_a_loss(name):
    cfg = load_config(str(PRETRAIN / name))
    backbone_type, residual = FAMILIES[name]
    assert cfg.model.backbone.type == f'mmresfamily.{backbone_type}'
    model = build_model(cfg.model)
    model.init_weights()
    assert type(model.backbone).__name__ == backbone_type
    assert type(model.backbone).__module__.startswith('mmresfamily.')
    assert model.backbone.out_channels[-1] == model.head.fc.in_features
    if residual:  # zero-gamma is a switch, off in the plain configs
        ends = residual_branch_ends(model.backbone)
        assert ends and all(e.abs().sum() > 0 for e in ends)
    model.train()
    data = model.data_preprocessor(make_batch([3, 999]), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0


# ---- zero-gamma ----------------------------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(n for n, (_, res) in FAMILIES.items()
                                        if res and '152' not in n))
def test_zero_gamma_zeroes_each_residual_branch_end(name):
    cfg = load_config(str(PRETRAIN / name), {'model.backbone.zero_init_residual': True})
    model = build_model(cfg.model)
    model.init_weights()
    ends = residual_branch_ends(model.backbone)
    assert len(ends) == 16  # 3 + 4 + 6 + 3 blocks
    assert all(torch.count_nonzero(e) == 0 for e in ends)


@pytest.mark.parametrize('name', sorted(n for n, (_, res) in FAMILIES.items() if not res))
def test_zero_gamma_is_refused_by_families_without_the_option(name):
    cfg = load_config(str(PRETRAIN / name), {'model.backbone.zero_init_residual': True})
    with pytest.raises(TypeError, match='zero_init_residual'):
        build_model(cfg.model)


# ---- training as tools/train.py runs it ----------------------------------------------------------
@pytest.fixture(scope='module')
def fake_imagenet(tmp_path_factory):
    """ImageNet's layout: {train,val}/CLASS/IMAGE + meta/{train,val}.txt ("path label")."""
    import cv2
    root = tmp_path_factory.mktemp('imagenet')
    rng = np.random.default_rng(0)
    (root / 'meta').mkdir()
    for split, per_class in (('train', 2), ('val', 1)):
        lines = []
        for label, wnid in enumerate(('n01440764', 'n01443537')):
            (root / split / wnid).mkdir(parents=True)
            for i in range(per_class):
                path = f'{wnid}/{wnid}_{i}.png'
                cv2.imwrite(str(root / split / path),
                            rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8))
                lines.append(f'{path} {label}')
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return root


def tiny_options(root):
    """4 train images in batches of 2 (2 iterations an epoch) at 64x64, one epoch. (At 32x32 the
    last stage is 1x1: BN statistics over 2 values, whose gradients blow the weights up.)"""
    return {
        'data_root': f'{root}/',
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.dataset.pipeline.1.scale': 64,
        'val_dataloader.batch_size': 2, 'val_dataloader.num_workers': 0,
        'val_dataloader.dataset.pipeline.1.scale': 72,
        'val_dataloader.dataset.pipeline.2.crop_size': 64,
        'train_cfg.max_epochs': 1, 'default_hooks.logger.interval': 1,
    }


def as_argv(options):
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


@pytest.fixture(scope='module')
def trained_baseline(fake_imagenet, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('wd_baseline')
    # a gentle lr: this checkpoint is also the KD test's teacher (eval mode, 2 batches of BN stats)
    options = dict(tiny_options(fake_imagenet), **{'optim_wrapper.optimizer.lr': 1e-3})
    runner = train_main([str(BASELINE), '--work-dir', str(work_dir), *as_argv(options)])
    return runner, work_dir


def test_baseline_trains_two_iterations_through_train_py(trained_baseline):
    runner, work_dir = trained_baseline
    assert runner.iter == 2 and runner.epoch == 1
    assert math.isfinite(runner.message_hub.get_scalar('train/loss').current())
    assert 0 <= runner.message_hub.get_scalar('val/accuracy/top1').current() <= 100
    assert (work_dir / 'epoch_1.pth').is_file()


def test_kd_student_trains_two_iterations_with_a_teacher_checkpoint(trained_baseline,
                                                                     fake_imagenet, tmp_path):
    """The KD leaf (every other trick on too) with the baseline's runner checkpoint as teacher."""
    _, teacher_dir = trained_baseline
    ckpt = teacher_dir / 'epoch_1.pth'
    options = dict(tiny_options(fake_imagenet), **{
        'model.teacher': str(BASELINE), 'model.teacher_ckpt': str(ckpt),
        'default_hooks.checkpoint.interval': 100, 'default_hooks.checkpoint.save_last': False})
    runner = train_main([str(KD), '--work-dir', str(tmp_path), *as_argv(options)])
    assert runner.iter == 2
    # Runner.train scaled the lr to the batch (auto_scale_lr) before building the schedulers
    groups = runner.optim_wrapper.optimizer.param_groups
    assert groups[0]['initial_lr'] == pytest.approx(0.1 * 2 / 256)
    for key in ('train/loss_cls', 'train/loss_kd'):
        assert math.isfinite(runner.message_hub.get_scalar(key).current())
    from mmresfamily.utils.checkpoint import trusted_runner_checkpoints
    with trusted_runner_checkpoints():
        saved = torch.load(ckpt, map_location='cpu')['state_dict']
    teacher = runner.model.teacher.state_dict()
    assert teacher.keys() == saved.keys()
    assert all(torch.equal(teacher[k], saved[k]) for k in saved)  # loaded, then never changed


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on CPU')
def test_mixed_precision_refuses_cpu(tmp_path):
    with pytest.raises(SystemExit, match='--amp needs a CUDA device'):
        train_main([str(TRICKS), '--amp', '--work-dir', str(tmp_path)])
    # the same switch written in a config (optim_wrapper.type) is refused by mmengine
    from mmengine.optim import build_optim_wrapper
    with pytest.raises(AssertionError, match='only available training on gpu'):
        build_optim_wrapper(torch.nn.Linear(2, 2), dict(
            type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))


# ---- the other tricks, on the Runner of the tricks leaf ------------------------------------------
@pytest.fixture(scope='module')
def tricks_runner(fake_imagenet, tmp_path_factory):
    """The tricks leaf's Runner, set up as Runner.train() does before the first iteration:
    optimizer, linear LR scaling, then the schedulers."""
    from mmengine.runner import Runner
    cfg = load_config(str(TRICKS), tiny_options(fake_imagenet))
    cfg.work_dir = str(tmp_path_factory.mktemp('wd_tricks'))
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    return runner


def test_linear_lr_scaling_then_warmup_then_cosine(tricks_runner):
    groups = tricks_runner.optim_wrapper.optimizer.param_groups
    base = 0.1 * 2 / 256  # lr 0.1 per 256 images, batch 2 on one process
    assert all(g['initial_lr'] == pytest.approx(base, rel=1e-9) for g in groups)
    schedulers = tricks_runner.param_schedulers
    assert [type(s).__name__ for s in schedulers] == ['LinearLR', 'CosineAnnealingLR']
    assert not any(s.by_epoch for s in schedulers)  # converted to iterations: 2 per epoch
    lrs = []
    for _ in range(200):  # 100 epochs
        lrs.append(groups[0]['lr'])
        for scheduler in schedulers:
            scheduler.step()
    warmup = 10  # 5 epochs, linear from lr/1000, reaching lr at its last iteration
    for i in range(warmup):
        assert lrs[i] == pytest.approx(base * (1e-3 + (1 - 1e-3) * i / (warmup - 1))), i
    for i in (warmup, 50, 105, 150, 199):  # cosine over the remaining 190 iterations
        expected = base * (1 + math.cos(math.pi * (i - warmup) / 190)) / 2
        assert lrs[i] == pytest.approx(expected, rel=1e-3, abs=1e-9), i


def test_no_weight_decay_on_biases_and_norms(tricks_runner):
    names = {id(p): n for n, p in tricks_runner.model.named_parameters()}
    modules = dict(tricks_runner.model.named_modules())
    decay = {}
    for group in tricks_runner.optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert len(decay) == len(names)
    norms = [n for n in decay if isinstance(modules[n.rsplit('.', 1)[0]], _BatchNorm)]
    biases = [n for n in decay if n.endswith('.bias')]
    assert norms and 'head.fc.bias' in biases
    assert all(decay[n] == 0 for n in norms + biases)
    others = set(decay) - set(norms) - set(biases)
    assert 'head.fc.weight' in others and 'backbone.conv1.weight' in others
    assert all(decay[n] == 1e-4 for n in others)


def test_label_smoothing_switch():
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    logits, labels = torch.randn(4, 1000), torch.tensor([0, 5, 999, 5])
    plain = MODELS.build(load_config(str(BASELINE)).model.head.loss)
    smooth = MODELS.build(load_config(str(TRICKS)).model.head.loss)
    assert type(smooth).__name__ == 'LabelSmoothLoss' and smooth.label_smooth_val == 0.1
    torch.testing.assert_close(plain(logits, labels), F.cross_entropy(logits, labels))
    log_p = F.log_softmax(logits, dim=1)
    by_hand = (0.9 * F.nll_loss(log_p, labels) - 0.1 * log_p.mean(dim=1).mean())
    torch.testing.assert_close(smooth(logits, labels), by_hand)


def test_mixup_cutmix_make_soft_labels_the_loss_accepts(tricks_runner):
    model = tricks_runner.model
    augments = model.data_preprocessor.batch_augments.augments
    assert [(type(a).__name__, a.alpha) for a in augments] == [('Mixup', 0.2), ('CutMix', 1.0)]
    eval_data = model.data_preprocessor(make_batch([0, 1, 2, 3], size=32), False)
    eval_scores = torch.stack([s.gt_score for s in eval_data['data_samples']])
    assert torch.equal(eval_scores, torch.eye(1000, dtype=eval_scores.dtype)[:4])  # no mixing
    mixed = False
    for _ in range(10):  # one of the two, a random permutation: some batch mixes two labels
        data = model.data_preprocessor(make_batch([0, 1, 2, 3], size=32), True)
        scores = torch.stack([s.gt_score for s in data['data_samples']])
        assert scores.shape == (4, 1000)
        torch.testing.assert_close(scores.sum(dim=1), torch.ones(4))
        mixed |= bool((scores.max(dim=1).values < 1 - 1e-6).any())
    assert mixed
    model.train()
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss'])


# ---- knowledge distillation ----------------------------------------------------------------------
def test_kd_loss_matches_a_hand_computation():
    import mmresfamily.pretrain  # noqa: F401  registers KDLoss
    from mmresfamily.registry import MODELS
    student, teacher = torch.randn(3, 5), torch.randn(3, 5)
    t, alpha, label_loss = 3.0, 0.3, torch.tensor(1.7)
    loss = MODELS.build(dict(type='mmresfamily.KDLoss', temperature=t, alpha=alpha))
    out = loss(student, teacher, label_loss)
    p_t = torch.exp(teacher / t) / torch.exp(teacher / t).sum(1, keepdim=True)
    p_s = torch.exp(student / t) / torch.exp(student / t).sum(1, keepdim=True)
    kl = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    torch.testing.assert_close(out['loss_kd'], alpha * t * t * kl)
    torch.testing.assert_close(out['loss_cls'], (1 - alpha) * label_loss)
    assert loss.distill(teacher, teacher) == pytest.approx(0, abs=1e-6)


def small_classifier(depth=18, num_classes=10):
    return dict(type='ImageClassifier',
                backbone=dict(type='mmresfamily.ResNet', depth=depth, out_indices=(3, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=512,
                          loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))


def test_kd_teacher_is_loaded_frozen_and_stays_in_eval(tmp_path):
    from mmengine.optim import build_optim_wrapper

    import mmresfamily.pretrain  # noqa: F401
    teacher = build_model(small_classifier())
    teacher.init_weights()
    for m in teacher.modules():  # non-trivial statistics: train mode would change them
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)

    model = build_model(dict(small_classifier(), type='mmresfamily.KDImageClassifier',
                             teacher=small_classifier(), teacher_ckpt=str(ckpt),
                             kd_loss=dict(type='mmresfamily.KDLoss', temperature=2., alpha=0.4)))
    data = model.data_preprocessor(make_batch([1, 7], size=32), True)
    with pytest.raises(RuntimeError, match='teacher is not loaded'):
        model(**data, mode='loss')
    model.init_weights()
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not any(p.requires_grad for p in model.teacher.parameters())

    model.train()
    assert model.backbone.training
    assert not any(m.training for m in model.teacher.modules())
    with torch.no_grad():
        losses = model(**data, mode='loss')
        student_logits = model(data['inputs'], mode='tensor')
        teacher_logits = teacher.eval()(data['inputs'], mode='tensor')
    p_t, log_p_s = F.softmax(teacher_logits / 2, 1), F.log_softmax(student_logits / 2, 1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    torch.testing.assert_close(losses['loss_kd'], 0.4 * 4 * kl)

    optim_wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.1,
                                                                   momentum=0.9)))
    student_before = model.backbone.conv1.weight.clone()
    log_vars = model.train_step(make_batch([1, 7], size=32), optim_wrapper)
    assert {'loss', 'loss_cls', 'loss_kd'} <= set(log_vars)
    assert not torch.equal(model.backbone.conv1.weight, student_before)
    after = model.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
