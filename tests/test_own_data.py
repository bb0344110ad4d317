"""Your own data: image folders (split or held out by seed), RecordIO of any class count, checkpoints that carry
their classes and preprocessing into eval.py and the export, and fine-tuning (new classifier, backbone lr_mult,
frozen stages, BatchNorm statistics).

One tiny source run (``source_run``: AsymmNet-S x0.35 at 16x16, 3 classes of 8 images in one folder, 2 epochs)
is shared; the fine-tuning runs start from it on other classes.
"""
import json
import math
import os
import re

import cv2
import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
import gluon_asymmnet.model_store as ms
from gluon_asymmnet.data import DataError
from gluon_asymmnet.data.folders import folder_layout, holdout_split, image_folder_sources
from gluon_asymmnet.data.pack import pack_arrays
from gluon_asymmnet.evaluation import main as eval_main
from gluon_asymmnet.export import main as export_main
from gluon_asymmnet.finetune import load_pretrained, stage_of_layers
from gluon_asymmnet.run_meta import read_run_info
from gluon_asymmnet.training import ConfigError, TrainConfig, parse_args, train

SIZE, PER_CLASS = 16, 8
TINY = ['--model', 'asymmnet_small', '--width-scale', '0.35', '--input-size', str(SIZE), '--batch-size', '4', '-j', '0',
        '--log-interval', '0', '--save-frequency', '1', '--lr', '0.1', '--lr-mode', 'cosine']


def image_folder(root, names, per_class=PER_CLASS, seed=0, split=False):
    """PNG images ``root/<name>/i.png`` (or ``root/train|val/<name>/``): noise plus a class-dependent bright band."""
    rng = np.random.RandomState(seed)
    for c, name in enumerate(names):
        for i in range(per_class):
            sub = ('train' if i < per_class * 3 // 4 else 'val') if split else ''
            folder = os.path.join(root, sub, name)
            os.makedirs(folder, exist_ok=True)
            img = rng.randint(0, 80, (SIZE, SIZE, 3)).astype(np.uint8)
            band = SIZE // len(names)
            img[:, c * band:(c + 1) * band] += 150
            cv2.imwrite(os.path.join(folder, '%d.png' % i), img)
    return str(root)


@pytest.fixture(scope='module')
def source_run(tmp_path_factory):
    """3 classes in one folder (held-out split by seed), a custom normalisation and crop ratio, 2 epochs."""
    root = tmp_path_factory.mktemp('own')
    data = image_folder(root / 'shapes', ['circle', 'line', 'square'])
    save = str(root / 'run')
    result = train(parse_args(TINY + ['--image-folder', data, '--num-epochs', '2', '--save-dir', save,
                                      '--rgb-mean', '100,110,120', '--rgb-std', '50,55,60', '--crop-ratio', '1',
                                      '--dry-run', '2']))
    return dict(result, data=data, root=root, last=os.path.join(save, 'shapes-asymmnet_small-1.params'))


def test_layouts_and_held_out_split(tmp_path):
    single = image_folder(tmp_path / 'single', ['a', 'b', 'c'], per_class=10)
    split = image_folder(tmp_path / 'split', ['a', 'b'], split=True)
    assert folder_layout(single)[0] == 'single' and folder_layout(split)[0] == 'split'
    train_src, val_src, info = image_folder_sources(single, 0.2, seed=3)
    assert (info['num_train'], info['num_val'], train_src.class_names) == (24, 6, ['a', 'b', 'c'])
    labels = [train_src.read(i)[0] for i in range(len(train_src))] + [val_src.read(i)[0] for i in range(6)]
    assert sorted(labels) == sorted([0.0] * 10 + [1.0] * 10 + [2.0] * 10)   # every image once, 2 held out per class
    again = image_folder_sources(single, 0.2, seed=3)[1]
    assert [val_src.describe(i) for i in range(6)] == [again.describe(i) for i in range(6)]
    other = image_folder_sources(single, 0.2, seed=4)[1]
    assert [val_src.describe(i) for i in range(6)] != [other.describe(i) for i in range(6)]
    # digits_split is the same function: the demo's split never changes.
    t, v = holdout_split(np.repeat(np.arange(3), 10), 0.2, 0)
    assert len(v) == 6 and len(np.intersect1d(t, v)) == 0
    tr, va, info = image_folder_sources(split)
    assert info['layout'] == 'split' and (len(tr), len(va)) == (12, 4) and va.class_names == ['a', 'b']
    with pytest.raises(DataError, match='leaves it no training image'):
        image_folder_sources(image_folder(tmp_path / 'one', ['x', 'y'], per_class=1), 0.9)
    with pytest.raises(DataError, match='image folder .* does not exist'):
        TrainConfig(image_folder=str(tmp_path / 'missing'))


def test_class_count_comes_from_the_data(tmp_path):
    folder = image_folder(tmp_path / 'pets', ['cat', 'dog'], per_class=2)
    cfg = TrainConfig(image_folder=folder)
    assert (cfg.classes, cfg.dataset, cfg.input_size) == (2, 'pets', 224)
    imgs = np.zeros((4, 8, 8, 3), np.uint8)
    rec = pack_arrays(imgs, [0, 1, 2, 36], str(tmp_path / 'train'), classes=['c%d' % i for i in range(37)])
    files = dict(rec_train=rec['rec'], rec_train_idx=rec['idx'], rec_val=rec['rec'], rec_val_idx=rec['idx'])
    assert (TrainConfig(**files).classes, TrainConfig(**files).dataset) == (37, tmp_path.name)
    assert TrainConfig(**files, classes=40).classes == 40
    without = pack_arrays(imgs, [0, 1, 2, 3], str(tmp_path / 'plain'))
    plain = dict(rec_train=without['rec'], rec_train_idx=without['idx'], rec_val=rec['rec'], rec_val_idx=rec['idx'])
    assert (TrainConfig(**plain).classes, TrainConfig(**plain).dataset) == (1000, 'imagenet')   # GluonCV's assumption
    with pytest.raises(ConfigError, match='give one data source, not the RecordIO flags and --image-folder'):
        TrainConfig(**files, image_folder=folder)
    with pytest.raises(ConfigError, match='the bundled digits have 10 classes'):
        TrainConfig(classes=3)
    # More classes in the data than the network predicts: named before training.
    with pytest.raises(ConfigError, match=r'--image-folder .*pets has 2 classes \(cat, dog, ...\), more than the 1 of '
                                          r'--classes 1: .*drop --classes'):
        train(parse_args(TINY + ['--image-folder', folder, '--classes', '1', '--num-epochs', '1', '--batch-size', '2',
                                 '--save-dir', str(tmp_path / 'x'), '--val-fraction', '0.5']))


def test_checkpoint_records_classes_preprocessing_and_real_image_count(source_run):
    info = read_run_info(source_run['last'])
    assert (info.model, info.kwargs['classes'], info.kwargs['multiplier']) == ('asymmnet_small', 3, 0.35)
    assert info.class_names == ['circle', 'line', 'square']
    assert (info.input_size, info.crop_ratio, info.mean, info.std) == (SIZE, 1.0, (100, 110, 120), (50, 55, 60))
    assert info.val_data == dict(image_folder=os.path.abspath(source_run['data']), val_fraction=0.2, split_seed=0)
    with open(info.path) as f:
        config = json.load(f)['config']
    with open(source_run['log_file']) as f:
        assert re.search(r'^dry run: 2 forward passes of one 16x16 image, \d+\.\d{6} ms each$', f.read(), re.M)
    # 24 images, 2 per class held out: the schedule counts the 18 training images (no ImageNet constant).
    assert config['num_samples'] == 18 and source_run['num_update'] == math.ceil(2 * 18 / 4)


def test_eval_and_export_need_no_flags(source_run, tmp_path, capsys):
    """eval.py --params alone evaluates the run's held-out images with its preprocessing: the training's figure."""
    out = str(tmp_path / 'eval.json')
    assert eval_main(['--params', source_run['last'], '--json', out, '--no-progress']) == 0
    with open(out) as f:
        figures = json.load(f)
    assert figures['top1'] == source_run['history'][-1]['top1'] and figures['num_samples'] == 6
    # Another folder of (some of) the run's classes: labels follow the run's class names.
    subset = image_folder(tmp_path / 'subset', ['square'], per_class=3, seed=5)
    assert eval_main(['--params', source_run['last'], '--image-folder', subset, '--no-progress']) == 0
    assert '3 images of %s' % subset in capsys.readouterr().out
    prefix = str(tmp_path / 'exp' / 'shapes')
    assert export_main(['--params', source_run['last'], '--prefix', prefix, '--preprocess', '--formats', 'symbol']) == 0
    assert 'symbol max relative error' in capsys.readouterr().out
    args = mx.nd.load(prefix + '-0000.params')
    assert np.allclose(args['arg:preprocess_mean'].asnumpy().ravel(), (100, 110, 120))


def test_get_model_pretrained_with_other_classes(source_run, tmp_path, caplog):
    """timm-like: everything but the classifier, which starts anew; a log line says so."""
    entry = ms.register(dict(name='own-data-test', model='asymmnet_small', kwargs=dict(multiplier=0.35, classes=3),
                             file_name='shapes.params', hash=ms.file_hash(source_run['last']), hash_type='sha1',
                             url=source_run['last'], layout='released'))
    try:
        source = ga.get_model('asymmnet_small', multiplier=0.35, classes=3, pretrained=source_run['last'])
        with caplog.at_level('WARNING', logger='gluon_asymmnet'):
            net = ga.get_model('asymmnet_small', multiplier=0.35, classes=5, pretrained=True, root=str(tmp_path))
        assert 'the classifier output.0 (5 classes) starts anew' in caplog.text
        assert net.output[0].weight.shape[0] == 5
        assert np.array_equal(net.features[4].conv2.conv.weight.data().asnumpy(),
                              source.features[4].conv2.conv.weight.data().asnumpy())
        # With the store's own class count everything is loaded, classifier included.
        same = ga.get_model('asymmnet_small', multiplier=0.35, classes=3, pretrained=entry.hash[:8], root=str(tmp_path))
        assert np.array_equal(same.output[0].weight.data().asnumpy(), source.output[0].weight.data().asnumpy())
        with pytest.raises(ValueError, match='no pretrained weights'):
            ga.get_model('asymmnet_small', multiplier=0.35, classes=5, pretrained=True, root=str(tmp_path),
                         strict=True)
    finally:
        ms.unregister('own-data-test')


def test_load_checkpoint_exclude_is_all_or_nothing_for_the_rest(source_run):
    net = ga.get_model('asymmnet_small', multiplier=0.35, classes=7)
    net.initialize()
    head = net.output[0].weight.data().asnumpy()
    assert ga.load_checkpoint(net, source_run['last'], exclude='output.0.*') == 'released'
    assert np.array_equal(net.output[0].weight.data().asnumpy(), head)   # excluded: untouched
    wider = ga.get_model('asymmnet_small', multiplier=0.5, classes=7)
    wider.initialize()
    before = wider.features[0].weight.data().asnumpy()
    with pytest.raises(ga.CheckpointError, match=r'features\.\S+ has shape .* in the file, the network expects'):
        ga.load_checkpoint(wider, source_run['last'], exclude=['output.0.weight', 'output.0.bias'])
    assert np.array_equal(wider.features[0].weight.data().asnumpy(), before)
    with pytest.raises(ga.CheckpointError, match="exclude='classifier.*' matches no parameter"):
        ga.load_checkpoint(net, source_run['last'], exclude='classifier.*')
    with pytest.raises(ga.CheckpointError, match='output.0.weight has shape'):
        load_pretrained(net, source_run['last'], new_head=False)


def finetune_args(source_run, save, *extra):
    data = image_folder(source_run['root'] / 'stripes', ['left', 'middle', 'right'], seed=7, split=True)
    return TINY + ['--image-folder', data, '--num-epochs', '1', '--save-dir', str(save),
                   '--finetune-from', source_run['last']] + list(extra)


def params_by_name(net):
    return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}


def test_finetune_new_classifier_lr_mult_frozen_stages(source_run, tmp_path):
    source = params_by_name(ga.get_model('asymmnet_small', multiplier=0.35, classes=3,
                                         pretrained=source_run['last']))
    result = train(parse_args(finetune_args(source_run, tmp_path, '--freeze-stages', '3')))
    with open(result['log_file']) as f:
        log = f.read()
    assert re.search(r'fine-tuning from \S+: a new classifier for 3 classes \(the file\'s run had other classes: '
                     r'circle, line, square\); backbone learning rate 0.1 x --lr; stages 1-3 frozen', log)
    net = result['net']
    after = params_by_name(net)
    stages = stage_of_layers(net)
    frozen = {k for k in after if k.startswith('features.') and (stages[int(k.split('.')[1])] or 99) <= 3}
    assert frozen and all(np.array_equal(after[k], source[k]) for k in frozen)   # running statistics too
    trained = [k for k in after if k.startswith('features.') and k not in frozen and k.endswith('weight')]
    assert trained and all(not np.array_equal(after[k], source[k]) for k in trained)
    # The new classifier is the seeded initialisation, trained at --lr; the backbone at 0.1 x --lr.
    assert not np.array_equal(after['output.0.weight'], source['output.0.weight'])
    params = net._collect_params_with_prefix()
    assert params['output.0.weight'].lr_mult == 1.0 and params['features.18.weight'].lr_mult == 0.1
    assert params['features.0.weight'].grad_req == 'null'
    with open(result['best_params'][:-len('.params')] + '.json') as f:
        plan = json.load(f)['config']['finetune']
    assert (plan['new_head'], plan['backbone_lr_mult'], plan['freeze_stages']) == (True, 0.1, 3)


def test_finetune_keeps_batchnorm_statistics_when_asked(source_run, tmp_path, monkeypatch):
    """From the model store (--pretrained HASH, a local entry), a linear probe with BatchNorm statistics kept."""
    source = params_by_name(ga.get_model('asymmnet_small', multiplier=0.35, classes=3,
                                         pretrained=source_run['last']))
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    entry = ms.register(dict(name='own-data-probe', model='asymmnet_small', kwargs=dict(multiplier=0.35, classes=3),
                             file_name='shapes.params', hash=ms.file_hash(source_run['last']), hash_type='sha1',
                             url=source_run['last'], layout='released'))
    try:
        argv = [a for a in finetune_args(source_run, tmp_path, '--bn-stats', 'keep', '--backbone-lr-mult', '0',
                                         '--lr', '0.01', '--num-training-samples', '40', '--pretrained',
                                         entry.hash[:10]) if a not in ('--finetune-from', source_run['last'])]
        result = train(parse_args(argv))
    finally:
        ms.unregister('own-data-probe')
    with open(result['log_file']) as f:
        assert 'warning: --num-training-samples 40: the schedule counts 40 images per epoch, the training data ' \
               'holds 18' in f.read()
    after = params_by_name(result['net'])
    stats = [k for k in after if k.endswith(('running_mean', 'running_var'))]
    assert stats and all(np.array_equal(after[k], source[k]) for k in stats)
    # lr_mult 0: a linear probe; only the classifier moved.
    moved = [k for k in after if not np.array_equal(after[k], source[k])]
    assert moved == ['output.0.weight', 'output.0.bias']
    with pytest.raises(ConfigError, match='--freeze-stages applies when fine-tuning'):
        parse_args(['--freeze-stages', '2'])


def test_finetuning_demonstration_runs(tmp_path):
    """benchmarks/bench_finetune.py at the smallest size: its runs are train_imagenet.py commands, the fine-tuned
    ones start from the digits 0-4 with a new classifier for 5-9 (the figures come from its full run)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
    try:
        import bench_finetune
    finally:
        sys.path.pop(0)
    said = []
    result = bench_finetune.measure(str(tmp_path), shots=(2,), seeds=(0,), budgets=(1,), model=('asymmnet_small', '0.35'),
                                    pretrain_epochs=1, input_size=16, say=said.append)
    assert len(result['commands']) == 4 and all(c.startswith('python train_imagenet.py') for c in result['commands'])
    assert result['val_images'] == 179 and result['rows'][0]['updates'] == 1
    with open(str(tmp_path / 'finetuned_2_1_0' / 'train_imagenet.log')) as f:
        assert "a new classifier for 5 classes (the file's run had other classes: 0, 1, 2, 3, 4)" in f.read()
    assert '| 2 | 1 (1) |' in bench_finetune.format_rows(result)
