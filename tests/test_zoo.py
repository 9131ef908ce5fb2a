"""The model table agrees with the references it cites, and the command line reads it."""
import json

import pytest
import timm
import torch
import torchvision

from mmresfamily import cli, zoo
from mmresfamily.registry import MODELS
from mmresfamily.testing import params_with_head

ROWS = list(zoo.MODELS.values())
SOURCES = [(m, s) for m in ROWS for s in m.sources]


def source_id(pair):
    return f'{pair[0].name}-{pair[1].scheme}'


@pytest.mark.parametrize('model', [m for m in ROWS if m.params_m], ids=lambda m: m.name)
def test_published_param_count(model):
    """Published sizes (1000-class linear head) within 0.5 %: the row builds that network."""
    with torch.device('meta'):  # sizes only: no memory, no init
        backbone = MODELS.build(model.backbone_cfg)
    measured = params_with_head(backbone) / 1e6
    assert abs(measured - model.params_m) / model.params_m <= 0.005, \
        f'{measured:.3f}M vs {model.params_m}M'


@pytest.mark.parametrize('pair', [p for p in SOURCES if p[1].scheme == 'torchvision'],
                         ids=source_id)
def test_torchvision_rows_match_torchvisions_metadata(pair):
    model, source = pair
    weights = next(w for w in torchvision.models.get_model_weights(source.ref)
                   if w.url.endswith('/' + source.filename))
    assert source.url == weights.url
    assert source.top1 == weights.meta['_metrics']['ImageNet-1K']['acc@1']
    assert model.params_m == pytest.approx(weights.meta['num_params'] / 1e6, rel=5e-3)


@pytest.mark.parametrize('pair', [p for p in SOURCES if p[1].scheme == 'timm'], ids=source_id)
def test_timm_rows_match_timms_metadata(pair):
    _, source = pair
    cfg = timm.models.get_pretrained_cfg(source.ref)
    assert cfg is not None, f'timm has no pretrained tag {source.ref}'
    assert cfg.hf_hub_id == f'timm/{source.ref}'
    assert source.license == cfg.license


def test_hash_prefixes_come_from_the_file_names():
    assert zoo.get('resnet50').source('torchvision').sha256_prefix == '0676ba61'
    assert zoo.get('resnest50').source('official').sha256_prefix == '528c19ca'
    assert zoo.get('rednet50').source('official').sha256_prefix is None
    assert zoo.get('resnet50').source('timm').sha256_prefix is None  # the hub names the blob


def test_every_family_has_a_row():
    registered = {n for n, cls in MODELS.module_dict.items() if hasattr(cls, 'arch_settings')}
    assert registered == set(zoo.families())


def test_cli_list_json_is_the_table(capsys):
    rows = cli.main(['list', '--json'])
    printed = json.loads(capsys.readouterr().out)
    assert printed == rows and [r['name'] for r in rows] == list(zoo.MODELS)
    resnest = next(r for r in rows if r['name'] == 'resnest50')
    assert [s['uri'] for s in resnest['sources']] == ['official://resnest50',
                                                       'timm://resnest50d.in1k']


def test_cli_info_shows_features_and_sources(capsys):
    cli.main(['info', 'densenet121'])
    out = capsys.readouterr().out
    assert 'stage4 1024ch /32' in out
    assert 'torchvision://densenet121: densenet121-a639ec97.pth' in out and 'BSD-3-Clause' in out


def test_cli_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(['info', 'resnet5'])
    assert exit_.value.code == 2
    assert "'resnet5' is not in the model table" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(['list', '--family', 'ResNot'])


@pytest.mark.parametrize('pair', SOURCES, ids=source_id)
def test_each_source_converts_into_the_rows_architecture(pair):
    """The converter a source names builds exactly the row's network (same modules, same
    hyper-parameters: repr on the meta device), so its weights load into the row's config."""
    from mmresfamily.converters import CONVERTERS, load_all
    load_all()
    model, source = pair
    _, cfg, _ = CONVERTERS[source.convert[0]](source.convert[1], {})
    with torch.device('meta'):
        assert repr(MODELS.build(cfg)) == repr(MODELS.build(model.backbone_cfg))


def test_fitting_names_the_model_or_conversion_that_fits():
    with torch.device('meta'):
        ours = MODELS.build(zoo.get('resnet18').backbone_cfg).state_dict()
        tv = torchvision.models.resnet18().state_dict()
    assert zoo.fitting(ours)[0].startswith('mmrf://resnet18 ')
    assert zoo.fitting(tv)[0].startswith('torchvision layout of resnet18: python -m mmresfamily '
                                         'convert torchvision resnet18 IN OUT')
    assert zoo.fitting({'conv1.weight': torch.zeros(1)}) == []
