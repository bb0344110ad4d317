"""One model vocabulary: the registry's entries (arguments, preprocessing), refused arguments, and the model
flags train_imagenet.py, eval.py and the export share (one spelling each, the older one as an alias)."""
import json
import os

import mxnet as mx
import pytest

import gluon_asymmnet as ga
from gluon_asymmnet.asymmnet import asymmnet_small
from gluon_asymmnet.evaluation import cli as eval_cli
from gluon_asymmnet.evaluation import load_model, random_weights
from gluon_asymmnet.export import build_parser as export_parser
from gluon_asymmnet.export import main as export_main
from gluon_asymmnet.model_flags import FLAGS, model_kwargs, preprocess_config, resolve
from gluon_asymmnet.model_store import StoreEntry, file_hash, register, unregister
from gluon_asymmnet import model_zoo, registry
from gluon_asymmnet.model_zoo import ModelSpec, get_model_spec, get_preprocess
from gluon_asymmnet.preprocessing import IMAGENET, PreprocessConfig
from gluon_asymmnet.run_meta import RUN_KEYS, read_run_info
from gluon_asymmnet.training import ConfigError, TrainConfig, build_network, parse_args, train_recipe
from gluon_asymmnet.training import build_parser as train_parser
from gluon_asymmnet.training.cli import main as train_main
from gluon_asymmnet.training.recipes import recipe_values

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASYMMNET_ARGS = {'multiplier': (float, 1.0), 'asymmrate': (int, 1), 'shuffle_groups': (int, 0),
                 'classes': (int, 1000), 'dropout': (float, 0.2), 'corrected_first_block': (bool, False)}
MOBILENETV3_ARGS = {k: v for k, v in ASYMMNET_ARGS.items() if k not in ('asymmrate', 'shuffle_groups')}
MOBILENETV2_ASYMM_ARGS = {k: (t, 0.0 if k == 'dropout' else d) for k, (t, d) in ASYMMNET_ARGS.items()
                          if k != 'corrected_first_block'}
MOBILENETV2_ARGS = {k: v for k, v in MOBILENETV2_ASYMM_ARGS.items() if k not in ('asymmrate', 'shuffle_groups')}
# The first block of AsymmNet-L x0.35: the original code gives it no residual, the corrected one does.
CORRECTED = ['--model', 'asymmnet_large', '--width-scale', '0.35', '--corrected-first-block']
# Which shared flags each command line has.
CLI_FLAGS = {
    'train': [d for d in FLAGS],
    'eval': [d for d in FLAGS if d != 'dropout'],
    'export': [d for d in FLAGS if d not in ('dropout', 'crop_ratio')],
}


def parsers():
    return {'train': train_parser(), 'eval': eval_cli.build_parser(), 'export': export_parser()}


# ---------------------------------------------------------------------------
# The registry


@pytest.mark.parametrize('name, expected', [('asymmnet_large', ASYMMNET_ARGS), ('asymmnet_small', ASYMMNET_ARGS),
                                            ('mobilenetv3_large', MOBILENETV3_ARGS),
                                            ('mobilenetv3_small', MOBILENETV3_ARGS),
                                            ('mobilenetv2', MOBILENETV2_ARGS),
                                            ('mobilenetv2_asymm', MOBILENETV2_ASYMM_ARGS)])
def test_each_entry_says_what_its_model_takes_and_expects(name, expected):
    spec = get_model_spec(name)
    assert {a.name: (a.type, a.default) for a in spec.arguments.values()} == expected
    assert spec.preprocess == IMAGENET and spec.preprocess.to_dict() == dict(
        input_size=224, crop_ratio=0.875, mean=(123.68, 116.779, 103.939), std=(58.393, 57.12, 57.375),
        interpolation='bilinear')
    assert spec.about and ga.get_model(name, multiplier=0.35).preprocess_config == IMAGENET
    assert get_model_spec(name.upper()) is spec and sorted(ga.get_model_list()) == ga.get_model_list()


def test_a_twin_without_feature_reuse_is_named_in_the_registry():
    assert get_model_spec('asymmnet_large').without_reuse == 'mobilenetv3_large'
    assert get_model_spec('mobilenetv3_small').without_reuse is None
    assert get_model_spec('mobilenetv2_asymm').without_reuse == 'mobilenetv2'


def test_an_alias_is_accepted_by_name_but_not_listed():
    """GluonCV's mobilenetv2_<width>: mobilenetv2 at that width, its store entries, out of the lists and choices."""
    spec = get_model_spec('mobilenetv2_0.5')
    assert (spec.alias_of, dict(spec.fixed)) == ('mobilenetv2', {'multiplier': 0.5}) and 'multiplier' not in spec.arguments
    assert 'mobilenetv2_0.5' not in ga.get_model_list() and 'mobilenetv2' in ga.get_model_list()
    assert 'mobilenetv2_0.5' not in [a for a in train_parser()._actions if a.dest == 'model'][0].choices
    assert ga.get_model('mobilenetv2_0.5', classes=10).multiplier == 0.5
    assert model_zoo.pretrained_entry('mobilenetv2_0.5').name == 'mobilenetv2_0.5-gluoncv'
    with pytest.raises(ValueError, match=r'^mobilenetv2_0\.5 is mobilenetv2 with multiplier=0\.5 by its name, got '
                                         r'multiplier=1\.0; it takes classes=1000, dropout=0\.0$'):
        ga.get_model('mobilenetv2_0.5', multiplier=1.0)
    with pytest.raises(ValueError, match=r"valid names: .*mobilenetv3_small \(and the aliases mobilenetv2_1\.0, "):
        get_model_spec('mobilenetv2_0.3')


@pytest.mark.parametrize('name, kwargs, message', [
    ('mobilenetv3_large', dict(asymmrate=1), 'mobilenetv3_large takes no asymmrate; it takes multiplier=1.0, '
                                             'classes=1000, dropout=0.2, corrected_first_block=False'),
    ('mobilenetv3_small', dict(shuffle_groups=2), 'mobilenetv3_small takes no shuffle_groups'),
    ('asymmnet_small', dict(width=0.5), "asymmnet_small takes no width; it takes multiplier=1.0, asymmrate=1, "
                                        "shuffle_groups=0"),
    ('resnet50', {}, "unknown model 'resnet50'; valid names: asymmnet_large"),
])
def test_get_model_refuses_what_a_model_does_not_take(name, kwargs, message):
    with pytest.raises(ValueError) as err:
        ga.get_model(name, **kwargs)
    assert message in str(err.value) and '\n' not in str(err.value)


def test_block_arguments_pass_through():
    assert ga.get_model('asymmnet_small', multiplier=0.35, prefix='mine_').prefix == 'mine_'


def test_fixed_arguments_make_one_entry_per_named_width():
    """A name that fixes a width (GluonCV's mobilenet1.0 manner): one entry, the builder shared."""
    spec = ModelSpec('asymmnet_small_0.5', asymmnet_small, fixed={'multiplier': 0.5})
    assert 'multiplier' not in spec.arguments and spec.defaults()['multiplier'] == 0.5
    assert spec.build(classes=10).multiplier == 0.5 and spec.build(multiplier=0.5).multiplier == 0.5
    with pytest.raises(ValueError, match=r'asymmnet_small_0\.5 has multiplier=0\.5 by its name, got multiplier=1'):
        spec.build(multiplier=1.0)
    with pytest.raises(TypeError, match='needs a default'):
        ModelSpec('broken', lambda classes: None)


def test_a_new_entry_reaches_every_command_line(monkeypatch):
    """Adding a model is one registry entry: the flags, TrainConfig and the refusals follow."""
    spec = ModelSpec('asymmnet_small_0.5', asymmnet_small, fixed={'multiplier': 0.5}, about='test')
    monkeypatch.setattr(registry, '_MODELS', registry._registry(*registry._MODELS.values(), spec))
    cfg = TrainConfig(model='asymmnet_small_0.5', asymmrate=2)
    assert (cfg.width_scale, cfg.asymmrate) == (0.5, 2)
    assert build_network(cfg, [mx.cpu()]).multiplier == 0.5
    with pytest.raises(ConfigError, match=r'asymmnet_small_0\.5 has multiplier=0\.5 by its name, got multiplier=1'):
        TrainConfig(model='asymmnet_small_0.5', width_scale=1.0)
    assert model_kwargs('asymmnet_small_0.5', {'width_scale': 0.5, 'classes': 3}) == {'multiplier': 0.5, 'classes': 3}


def test_preprocess_config_is_checked():
    assert IMAGENET.replace(crop_ratio=1.0, input_size=None).crop_ratio == 1.0
    for changes, words in ((dict(crop_ratio=1.5), 'crop_ratio must be in (0, 1]'),
                           (dict(std=(1, 0, 1)), 'std must be positive'),
                           (dict(mean=(1, 2)), 'mean must be 3 finite numbers'),
                           (dict(interpolation='bicubic'), 'interpolation must be one of bilinear'),
                           (dict(colour=1), 'not preprocessing fields: colour')):
        with pytest.raises(ValueError, match=words.replace('(', r'\(').replace(')', r'\)')):
            IMAGENET.replace(**changes)
    assert isinstance(IMAGENET, PreprocessConfig)


def test_a_store_entry_refines_the_preprocessing(tmp_path):
    """get_model sets the entry's preprocessing on the network; eval and export start from it."""
    net = random_weights(ga.get_model('asymmnet_small', multiplier=0.35, classes=10))
    path = str(tmp_path / 'asymmnet_small-crop.params')
    net.save_parameters(path)
    fields = dict(name='crop-test', model='asymmnet_small', kwargs=dict(multiplier=0.35, classes=10),
                  file_name=os.path.basename(path), hash=file_hash(path, 'sha1'), hash_type='sha1',
                  url='http://127.0.0.1:9/never-fetched.params', preprocess=dict(crop_ratio=0.9, input_size=160))
    with pytest.raises(ValueError, match="store entry 'crop-test': preprocess: crop_ratio must be in"):
        StoreEntry.from_dict(dict(fields, preprocess=dict(crop_ratio=2)))
    entry = register(fields)
    try:
        loaded = ga.get_model('asymmnet_small', pretrained=True, root=str(tmp_path), strict=True, multiplier=0.35,
                              classes=10)
        assert (loaded.preprocess_config.crop_ratio, loaded.preprocess_config.input_size) == (0.9, 160)
        assert loaded.preprocess_config.mean == IMAGENET.mean
        assert get_preprocess('asymmnet_small', entry.hash[:8], multiplier=0.35, classes=10).crop_ratio == 0.9
        assert get_preprocess('asymmnet_small', path, multiplier=0.35, classes=10) == IMAGENET   # a file: the model's
        choice = resolve({'model': 'asymmnet_small', 'width_scale': 0.35, 'classes': 10, 'input_size': 96},
                         pretrained=True)
        assert (choice.preprocess.crop_ratio, choice.preprocess.input_size) == (0.9, 96)
    finally:
        unregister('crop-test')


# ---------------------------------------------------------------------------
# The shared flags


@pytest.mark.parametrize('cli', sorted(CLI_FLAGS))
def test_each_command_line_has_the_shared_flags_with_one_spelling_and_its_alias(cli):
    actions = {a.dest: a for a in parsers()[cli]._actions}
    for dest in CLI_FLAGS[cli]:
        assert tuple(actions[dest].option_strings) == FLAGS[dest].flags, (cli, dest)
    assert not [dest for dest in FLAGS if dest not in CLI_FLAGS[cli] and dest in actions]


def test_the_aliases():
    assert FLAGS['width_scale'].flags == ('--width-scale', '--multiplier')
    assert FLAGS['shuffle_group'].flags == ('--shuffle-group', '--shuffle-groups')
    for spelling in ('--width-scale', '--multiplier'):
        assert parse_args([spelling, '0.5']).width_scale == 0.5
        assert eval_cli.build_parser().parse_args([spelling, '0.5']).width_scale == 0.5
        assert export_parser().parse_args([spelling, '0.5', '--params', 'p', '--prefix', 'x']).width_scale == 0.5
    for spelling in ('--shuffle-group', '--shuffle-groups'):
        assert parse_args([spelling, '2']).shuffle_group == 2
        assert eval_cli.build_parser().parse_args([spelling, '2']).shuffle_group == 2
        assert export_parser().parse_args([spelling, '2', '--params', 'p', '--prefix', 'x']).shuffle_group == 2


def test_docs_list_the_shared_flags():
    """docs/flags.md's table of the shared flags is the one in gluon_asymmnet.model_flags."""
    with open(os.path.join(ROOT, 'docs', 'flags.md')) as f:
        text = f.read()
    table = text[text.index('## Model flags'):]
    rows = [line for line in table.splitlines()[1:] if line.startswith('| `')]
    documented = [tuple(cell.strip().strip('`') for cell in row.split('|')[1:3]) for row in rows]
    assert documented == [(f.flags[0], ', '.join(f.flags[1:])) for f in FLAGS.values()]


def test_flags_a_model_does_not_take_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r'^mobilenetv3_large takes no asymmrate \(--asymmrate\); it takes '
                                          r'--width-scale, --classes, --dropout, --corrected-first-block; '
                                          r'asymmnet_large adds feature reuse$'):
        parse_args(['--model', 'mobilenetv3_large', '--asymmrate', '1'])
    assert train_main(['--model', 'mobilenetv3_small', '--shuffle-groups', '2']) == 2
    err = capsys.readouterr().err
    assert err == ('train_imagenet.py: error: mobilenetv3_small takes no shuffle_groups (--shuffle-group); it takes '
                   '--width-scale, --classes, --dropout, --corrected-first-block; asymmnet_small adds feature reuse\n')
    cases = {eval_cli.main: ['--params', 'x', '--dataset', 'demo'],
             export_main: ['--params', str(tmp_path / 'x.params'), '--prefix', str(tmp_path / 'x')]}
    for main, rest in cases.items():
        with pytest.raises(SystemExit) as stop:
            main(['--model', 'mobilenetv3_large', '--asymmrate', '1'] + rest)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and 'mobilenetv3_large takes no asymmrate (--asymmrate)' in err, err


def test_model_kwargs_from_values():
    values = {'model': 'asymmnet_small', 'width_scale': 0.5, 'asymmrate': None, 'shuffle_group': 2,
              'corrected_first_block': False, 'classes': 10, 'lr': 0.1}
    assert model_kwargs('asymmnet_small', values) == {'multiplier': 0.5, 'shuffle_groups': 2, 'classes': 10}
    assert model_kwargs('asymmnet_small', {'corrected_first_block': True}, base={'classes': 3}) == {
        'classes': 3, 'corrected_first_block': True}
    # Records of older runs saved MobileNetV3's asymmrate, which never reached the network.
    assert model_kwargs('mobilenetv3_small', {'asymmrate': 1, 'classes': 5}, lenient=True) == {'classes': 5}


def test_preprocessing_flags_over_a_base():
    pre = preprocess_config({'crop_ratio': 1.0, 'rgb_mean': '1,2,3', 'input_size': None})
    assert (pre.crop_ratio, pre.mean, pre.std, pre.input_size) == (1.0, (1.0, 2.0, 3.0), IMAGENET.std, 224)
    with pytest.raises(ValueError, match=r'^--crop-ratio 1.5: crop_ratio must be in \(0, 1\]'):
        preprocess_config({'crop_ratio': 1.5})
    with pytest.raises(ValueError, match=r"^--rgb-std must be 3 comma-separated numbers \(R,G,B\), got '1,2'"):
        preprocess_config({'rgb_std': '1,2'})


# ---------------------------------------------------------------------------
# Training: TrainConfig's model fields come from the registry


def test_train_config_takes_the_models_defaults():
    cfg = TrainConfig()
    assert (cfg.width_scale, cfg.asymmrate, cfg.shuffle_group, cfg.dropout, cfg.corrected_first_block) == (
        1.0, 1, 0, 0.2, False)
    assert (cfg.crop_ratio, cfg.rgb_mean, cfg.rgb_std) == (IMAGENET.crop_ratio, IMAGENET.mean, IMAGENET.std)
    mnv3 = TrainConfig(model='mobilenetv3_small')
    assert (mnv3.asymmrate, mnv3.shuffle_group) == (None, None)
    assert mnv3.model_kwargs == {'multiplier': 1.0, 'classes': 10, 'dropout': 0.2}
    assert {'corrected_first_block', 'width_scale', 'rgb_mean', 'crop_ratio'} <= set(RUN_KEYS)


def test_a_recipe_for_another_model_drops_the_arguments_it_does_not_take():
    assert recipe_values('released')['asymmrate'] == 1
    assert 'asymmrate' not in recipe_values('released', model='mobilenetv3_large')
    cfg = train_recipe('released', model='mobilenetv3_large', data_dir='/data/imagenet')
    assert (cfg.model, cfg.asymmrate, cfg.lr, cfg.classes) == ('mobilenetv3_large', None, 2.6, 1000)


# ---------------------------------------------------------------------------
# --corrected-first-block reaches the network in train, eval and export


def test_corrected_first_block_in_training():
    for argv, residual in ((CORRECTED, True), (CORRECTED[:-1], False)):
        cfg = parse_args(argv)
        net = build_network(cfg, [mx.cpu()])
        assert (cfg.corrected_first_block, net.corrected_first_block, net.blocks[0].residual) == (
            residual, residual, residual)


@pytest.fixture(scope='module')
def large_params(tmp_path_factory):
    """Weights of AsymmNet-L x0.35 (10 classes): they fit the original and the corrected network alike."""
    net = random_weights(ga.get_model('asymmnet_large', multiplier=0.35, classes=10), seed=3)
    path = str(tmp_path_factory.mktemp('large') / 'large.params')
    net.save_parameters(path)
    return path


def test_corrected_first_block_in_eval(large_params, tmp_path):
    args = eval_cli.build_parser().parse_args(CORRECTED + ['--classes', '10', '--params', large_params])
    assert eval_cli.run_defaults(args) is None
    assert args.model_kwargs == {'multiplier': 0.35, 'corrected_first_block': True, 'classes': 10}
    net, described = load_model(args.model, args.params, **args.model_kwargs)
    assert net.blocks[0].residual and described['kwargs']['corrected_first_block'] is True
    # A checkpoint of train_imagenet.py brings it in its .json.
    run = tmp_path / 'run.params'
    run.write_bytes(open(large_params, 'rb').read())
    config = {k: getattr(parse_args(CORRECTED), k) for k in RUN_KEYS if k != 'class_names'}
    config.update(classes=10, dataset='x')
    (tmp_path / 'run.json').write_text(json.dumps({'config': config}))
    args = eval_cli.build_parser().parse_args(['--params', str(run)])
    assert eval_cli.run_defaults(args).kwargs['corrected_first_block'] is True
    assert args.model == 'asymmnet_large' and args.model_kwargs['corrected_first_block'] is True
    assert (args.crop_ratio, args.rgb_mean, args.input_size) == (IMAGENET.crop_ratio, IMAGENET.mean, 32)


def residual_adds(prefix):
    with open(prefix + '-symbol.json') as f:
        return sum(node['op'] == 'elemwise_add' for node in json.load(f)['nodes'])


def test_corrected_first_block_in_export(large_params, tmp_path, capsys):
    common = ['--model', 'asymmnet_large', '--multiplier', '0.35', '--classes', '10', '--params', large_params,
              '--input-size', '32', '--formats', 'symbol']
    assert export_main(common + ['--prefix', str(tmp_path / 'original')]) == 0
    assert export_main(common + ['--corrected-first-block', '--prefix', str(tmp_path / 'corrected')]) == 0
    assert 'symbol max relative error vs Gluon' in capsys.readouterr().out
    assert residual_adds(str(tmp_path / 'corrected')) == residual_adds(str(tmp_path / 'original')) + 1


def test_export_preprocessing_flags(large_params, tmp_path, capsys):
    prefix = str(tmp_path / 'u8')
    argv = ['--model', 'asymmnet_large', '--multiplier', '0.35', '--classes', '10', '--params', large_params,
            '--input-size', '32', '--formats', 'symbol', '--prefix', prefix, '--rgb-mean', '100,110,120']
    with pytest.raises(SystemExit) as stop:
        export_main(argv)
    assert stop.value.code == 2 and 'add --preprocess' in capsys.readouterr().err
    assert export_main(argv + ['--preprocess']) == 0
    _, saved, _ = mx.model.load_checkpoint(prefix, 0)
    assert saved['preprocess_mean'].asnumpy().ravel().tolist() == [100, 110, 120]
    assert saved['preprocess_std'].asnumpy().ravel().tolist() == pytest.approx(IMAGENET.std)


def test_an_older_run_record_reads_with_the_registry_defaults(tmp_path):
    """No preprocessing keys and MobileNetV3 with asymmrate 1, as runs of an older release wrote them."""
    (tmp_path / 'old.json').write_text(json.dumps({'config': {
        'model': 'mobilenetv3_small', 'width_scale': 0.75, 'asymmrate': 1, 'shuffle_group': 0, 'classes': 10,
        'dataset': 'digits'}}))
    info = read_run_info(str(tmp_path / 'old.params'))
    assert info.kwargs == {'multiplier': 0.75, 'classes': 10}
    assert (info.input_size, info.crop_ratio, info.mean, info.std) == (224, 0.875, IMAGENET.mean, IMAGENET.std)
    assert info.preprocess_config == IMAGENET
