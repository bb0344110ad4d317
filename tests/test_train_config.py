"""TrainConfig: one flag per field, checked once, frozen; recipes as data; argv <-> config round trips."""
import dataclasses

import pytest

from gluon_asymmnet.training import (RECIPES, ConfigError, TrainConfig, build_parser, config_argv, parse_args,
                                     recipe_argv, train_recipe)
from gluon_asymmnet.training.cli import main

REC = dict(rec_train='t.rec', rec_train_idx='t.idx', rec_val='v.rec', rec_val_idx='v.idx')


def test_every_field_is_a_flag_and_the_defaults_are_the_configs():
    dests = {a.dest for a in build_parser()._actions if not a.dest.startswith('_compat_')} - {'help', 'recipe'}
    assert dests == {f.name for f in dataclasses.fields(TrainConfig)}
    assert parse_args([]) == TrainConfig()
    assert (TrainConfig().dataset, TrainConfig().classes, TrainConfig().input_size) == ('digits', 10, 32)


def test_argv_round_trip():
    values = dict(REC, dataset='imagenet200', num_workers=2, model='asymmnet_small', width_scale=0.75,
                  shuffle_group=2, last_gamma=True, mode='imperative', lr=0.05, lr_mode='step', lr_decay_epoch=[5, 8],
                  warmup_epochs=1, num_epochs=10, wd=3e-5, mixup=True, mixup_alpha=0.4, label_smoothing=False,
                  teacher='mobilenetv3_large', temperature=4.0, resume='latest', save_dir='out dir')
    cfg = TrainConfig(**values)
    argv = config_argv(values)
    assert '--label-smoothing' not in argv and argv[argv.index('--lr-decay-epoch') + 1] == '5,8'
    assert argv[:2] == ['--rec-train', 't.rec'] and argv[argv.index('-j') + 1] == '2'
    assert parse_args(argv) == cfg
    assert (cfg.lr_decay_epoch, cfg.decay_epochs, cfg.classes, cfg.input_size) == ((5, 8), (5, 8), 200, 224)
    with pytest.raises(ConfigError, match='not TrainConfig fields: nope'):
        config_argv(dict(nope=1))


def test_checked_once_and_frozen():
    cfg = TrainConfig(**REC)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    assert dataclasses.replace(cfg, lr=0.5).lr == 0.5
    assert dataclasses.replace(TrainConfig(), lr=0.5).dataset == 'digits'   # derived values survive a copy
    with pytest.raises(ConfigError, match='--batch-size must be >= 1, got 0'):
        dataclasses.replace(cfg, batch_size=0)


@pytest.mark.parametrize('values, message', [
    (dict(model='resnet50'), '--model resnet50: choose from asymmnet_large'),
    (dict(lr_mode='exp'), '--lr-mode exp: choose from step'),
    (dict(kvstore='nccl'), '--kvstore nccl: choose from'),
    (dict(lr_decay_epoch=[3, 'x']), "--lr-decay-epoch must be comma-separated integers, got \\[3, 'x'\\]"),
    (dict(lr_decay_epoch=[3.5]), '--lr-decay-epoch must be comma-separated integers'),
    (dict(REC, dataset='digits'), "dataset 'digits' is the bundled data, which takes no data flags"),
    (dict(REC, dataset='cifar/10'), '--dataset \'cifar/10\': a name of letters, digits'),
    (dict(REC, dataset='imagenet', classes=37), '--dataset imagenet has 1000 classes, --classes says 37'),
    (dict(num_workers=-1), '--num-data-workers must be >= 0, got -1'),
    (dict(lr=float('nan')), r'--lr must be a finite number in \(0, inf\), got nan'),
])
def test_library_values_are_checked_like_flags(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**values)


def test_recipes():
    released = train_recipe('released', data_dir='/data/imagenet')
    assert (released.model, released.device_batch, released.num_epochs, released.lr, released.wd) == (
        'asymmnet_large', 2048, 360, 2.6, 3e-5)
    assert released.dataset == 'imagenet' and released.label_smoothing and released.no_wd
    # Flags override a recipe; without data the ImageNet recipe names what is missing.
    assert parse_args(['--recipe', 'released', '--data-dir', '/d', '--lr', '1.3']).lr == 1.3
    with pytest.raises(ConfigError, match='--dataset imagenet needs data'):
        parse_args(['--recipe', 'released'])
    with pytest.raises(ConfigError, match="no recipe 'x'; recipes: demo, released"):
        train_recipe('x')
    # A shorter run keeps a warm-up shorter than itself, unless the warm-up is given.
    assert train_recipe('released', data_dir='/d', num_epochs=3).warmup_epochs == 2
    assert train_recipe('released', data_dir='/d', num_epochs=30).warmup_epochs == 5
    # A warm-up as long as the run is allowed, as in GluonCV (the run warns, tests/test_own_data.py).
    assert train_recipe('released', data_dir='/d', num_epochs=5, warmup_epochs=5).warmup_longer_than_run
    for name in RECIPES:
        extra = dict(data_dir='/d') if name == 'released' else {}
        assert parse_args(recipe_argv(name, **extra)) == train_recipe(name, **extra)
    with pytest.raises(TypeError):
        RECIPES['demo']['lr'] = 1   # recipes are read-only data


def test_cli_reports_a_bad_recipe_use_in_one_line(capsys):
    assert main(['--recipe', 'released', '--num-epochs', '2']) == 2
    err = capsys.readouterr().err
    assert err.startswith('train_imagenet.py: error: --dataset imagenet needs data') and err.count('\n') == 1
