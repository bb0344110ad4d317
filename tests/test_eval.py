"""eval.py: evaluation on RecordIO, folders and exported symbols with known answers; summary; errors."""
import csv
import json
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from filelock import FileLock

import gluon_asymmnet as ga
from conftest import DATA, assert_sensitive, rel_err
from gluon_asymmnet.data import folder_batches, get_data_loaders
from gluon_asymmnet.evaluation import (EvalError, eval_batches, load_model, main, random_weights, summary_rows)
from gluon_asymmnet.pack import pack_arrays

SMALL = dict(multiplier=0.35, classes=10)
SMALL_ARGS = ['--model', 'asymmnet_small', '--width-scale', '0.35', '--classes', '10']
# The demo recipe (AsymmNet-S x0.5), shortened.
DEMO_TRAIN = dict(num_epochs=4, warmup_epochs=1)


def _shared_dir(tmp_path_factory, worker_id, name):
    """A folder shared by the xdist workers of this session (the session's own one otherwise)."""
    base = tmp_path_factory.getbasetemp()
    if worker_id != 'master':
        base = base.parent
    return base / name


@pytest.fixture(scope='session')
def demo_model(tmp_path_factory, worker_id):
    """AsymmNet-S x0.5 trained for 4 epochs on the demo digits by the training library (once per session)."""
    folder = _shared_dir(tmp_path_factory, worker_id, 'demo_model')
    folder.mkdir(parents=True, exist_ok=True)
    summary = folder / 'result.json'
    with FileLock(str(folder) + '.lock'):
        if not summary.exists():
            from gluon_asymmnet.training import train, train_recipe
            result = train(train_recipe('demo', save_dir=str(folder / 'run'), **DEMO_TRAIN))
            last = result['history'][-1]
            summary.write_text(json.dumps({'params': result['best_params'], 'best_top1': result['best_top1'],
                                           'best_epoch': result['best_epoch'], 'last_top1': last['top1'],
                                           'last_top5': last['top5'], 'epochs': len(result['history'])}))
    info = json.loads(summary.read_text())
    info.update(model='asymmnet_small', kwargs=dict(multiplier=0.5, classes=10),
                args=['--model', 'asymmnet_small', '--width-scale', '0.5', '--classes', '10', '--params',
                      info['params']])
    return info


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().out


def test_eval_reproduces_the_training_validation(demo_model, tmp_path, capsys):
    out_json = str(tmp_path / 'eval.json')
    # The training validated in batches of 64; the same batches give bit-identical logits.
    code, out = _run(demo_model['args'] + ['--dataset', 'demo', '--json', out_json, '--batch-size', '64'], capsys)
    assert code == 0
    figures = json.loads(open(out_json).read())
    assert figures['num_samples'] == 359
    # The best checkpoint is the last epoch's here only if accuracy rose; either way its figure is the best one.
    assert figures['top1'] == pytest.approx(demo_model['best_top1'], abs=1e-9)
    if demo_model['best_epoch'] == demo_model['epochs'] - 1:
        assert figures['top5'] == pytest.approx(demo_model['last_top5'], abs=1e-9)
    assert 'top1=%f top5=%f' % (figures['top1'], figures['top5']) in out
    assert figures['top1'] > 0.5  # it did learn


# ---------------------------------------------------------------------------
# Generated data with designed labels


def _images(n, size=40, seed=0):
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 256, (n, 1, 1, 3))
    noise = rng.randint(-60, 60, (n, size, size + 8, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _design_labels(logits, seed=1):
    """Labels for which top-1 and top-5 are known: a top-1 hit, a top-5-only hit or a miss per image.

    Each label sits well inside its region of the ranking (margins far above
    float rounding), so other batch sizes or kernels cannot move it across.
    """
    order = np.argsort(-logits, axis=1)
    ranked = np.take_along_axis(logits, order, axis=1)
    eps = 1e-3 * float(logits.std())
    wanted = np.random.RandomState(seed).permutation(np.arange(len(logits)) % 3)
    labels, kinds = [], []
    for want, row, values in zip(wanted, order, ranked):
        choices = {0: [0] if values[0] - values[1] > eps else [],
                   1: [r for r in range(1, 5) if values[0] - values[r] > eps and values[r] - values[5] > eps],
                   2: [r for r in range(5, 10) if values[4] - values[r] > eps]}
        kind = want if choices[want] else next(k for k in (2, 1, 0) if choices[k])
        labels.append(row[choices[kind][0]])
        kinds.append(kind)
    kinds = np.array(kinds)
    return np.array(labels), float(np.mean(kinds == 0)), float(np.mean(kinds <= 1))


def _predict(net, batches):
    return np.concatenate([net(data).asnumpy() for data, _ in batches])


@pytest.fixture(scope='module')
def small_net():
    return random_weights(ga.get_model('asymmnet_small', **SMALL), seed=3)


def test_random_weights_are_seeded_and_well_conditioned():
    """The benchmark's random network computes something: its outputs differ per image and follow its first block."""
    from reference_weights import network_reference_weights
    net = random_weights(ga.get_model('asymmnet_large', multiplier=0.5, classes=10), seed=5)
    again = ga.get_model('asymmnet_large', multiplier=0.5, classes=10)
    again.initialize()
    drawn = network_reference_weights(again, seed=5)  # the same distributions (tests/reference_weights.py)
    for key, p in net._collect_params_with_prefix().items():
        assert np.array_equal(p.data().asnumpy(), drawn[key]), key
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 3, 64, 64)))
    out = net(x).asnumpy()
    assert rel_err(out[0], out[1]) > 0.1
    assert_sensitive(net, x)


def test_eval_on_recordio_with_known_answer(small_net, tmp_path, capsys):
    images = _images(30)
    prefix = str(tmp_path / 'val')
    pack_arrays(images, np.zeros(30), prefix)
    first = get_data_loaders(rec_val=prefix + '.rec', train=False, input_size=32, batch_size=8, num_workers=0)[1]
    labels, top1, top5 = _design_labels(_predict(small_net, first))
    pack_arrays(images, labels, prefix, classes=['c%d' % i for i in range(10)])
    params = str(tmp_path / 'net.params')
    small_net.save_parameters(params)
    out_json = str(tmp_path / 'r.json')
    code, out = _run(SMALL_ARGS + ['--params', params, '--rec-val', prefix + '.rec', '--input-size', '32',
                                   '--batch-size', '8', '--json', out_json, '--no-progress'], capsys)
    assert code == 0
    figures = json.loads(open(out_json).read())
    assert (figures['top1'], figures['top5'], figures['num_samples']) == (pytest.approx(top1), pytest.approx(top5), 30)
    assert 0 < top1 < top5 < 1
    assert figures['data']['num_classes'] == 10 and figures['model']['weights'] == params
    # The same evaluation through the library, with another batch size.
    batches, info = eval_batches(rec_val=prefix + '.rec', rec_val_idx=prefix + '.idx', input_size=32, batch_size=7)
    from gluon_asymmnet.evaluation import evaluate
    again = evaluate(small_net, batches, info)
    assert again['top1'] == pytest.approx(top1) and again['top5'] == pytest.approx(top5)


def _class_folder(root, images, labels):
    for i, (img, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, 'c%d' % label)
        os.makedirs(folder, exist_ok=True)
        cv2.imwrite(os.path.join(folder, 'img%03d.png' % i), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def test_eval_on_folders_with_known_answer(small_net, tmp_path, capsys):
    images = _images(24, seed=5)
    _class_folder(str(tmp_path / 'probe'), images, np.zeros(24, int))
    logits = _predict(small_net, folder_batches(str(tmp_path / 'probe'), batch_size=8, input_size=32))
    labels, top1, top5 = _design_labels(logits, seed=2)
    names = str(tmp_path / 'classes.txt')
    with open(names, 'w') as f:
        f.write('\n'.join('c%d' % i for i in range(10)))
    _class_folder(str(tmp_path / 'any'), images, labels)
    _class_folder(str(tmp_path / 'imagenet' / 'val'), images, labels)
    for i in range(10):
        os.makedirs(str(tmp_path / 'imagenet' / 'train' / ('c%d' % i)))
    params = str(tmp_path / 'net.params')
    small_net.save_parameters(params)
    for data_args in (['--image-folder', str(tmp_path / 'any'), '--class-names', names],
                      ['--data-dir', str(tmp_path / 'imagenet')]):
        out_json = str(tmp_path / 'r.json')
        code, _ = _run(SMALL_ARGS + ['--params', params, '--input-size', '32', '--json', out_json,
                                     '--no-progress'] + data_args, capsys)
        assert code == 0
        figures = json.loads(open(out_json).read())
        assert (figures['top1'], figures['top5'], figures['num_samples']) == (
            pytest.approx(top1), pytest.approx(top5), 24), data_args


def test_eval_exported_symbol_and_pretrained_store(small_net, tmp_path, capsys, demo_model):
    from gluon_asymmnet.export import export
    from gluon_asymmnet.model_store import file_hash, register, unregister
    net, _ = load_model(demo_model['model'], demo_model['params'], **demo_model['kwargs'])
    files = export(net, str(tmp_path / 'exp' / 'digits'), input_size=32, formats=('symbol',))
    assert files['symbol'].endswith('digits-symbol.json')
    out_json = str(tmp_path / 'sym.json')
    code, _ = _run(['--model-prefix', str(tmp_path / 'exp' / 'digits'), '--dataset', 'demo', '--json', out_json,
                    '--batch-size', '64', '--no-progress'], capsys)
    assert code == 0
    assert json.loads(open(out_json).read())['top1'] == pytest.approx(demo_model['best_top1'], abs=1e-9)
    # --pretrained: a store entry whose file is already in the store folder (no download).
    root = tmp_path / 'store'
    root.mkdir()
    data = open(demo_model['params'], 'rb').read()
    (root / 'digits-test.params').write_bytes(data)
    register({'name': 'digits-test', 'model': 'asymmnet_small', 'kwargs': {'multiplier': 0.5, 'classes': 10},
              'file_name': 'digits-test.params', 'hash': file_hash(str(root / 'digits-test.params')),
              'hash_type': 'sha1', 'url': 'http://127.0.0.1:9/never', 'layout': 'released'})
    try:
        code, _ = _run(['--model', 'asymmnet_small', '--width-scale', '0.5', '--classes', '10', '--pretrained',
                        '--root', str(root), '--dataset', 'demo', '--json', out_json, '--batch-size', '64',
                        '--no-progress'], capsys)
    finally:
        unregister('digits-test')
    assert code == 0
    assert json.loads(open(out_json).read())['top1'] == pytest.approx(demo_model['best_top1'], abs=1e-9)


# ---------------------------------------------------------------------------
# Summary


def test_summary_matches_counts_csv_and_marks_invalid(capsys):
    counts = {(r['model'], float(r['multiplier']), int(r['asymmrate'])): r
              for r in csv.DictReader(open(os.path.join(DATA, 'counts.csv')))}
    rows = summary_rows()
    assert len(rows) == 24 + 12
    v2 = [r for r in rows if r['model'].startswith('mobilenetv2')]
    assert [(r['model'], r['multiplier'], r['asymmrate']) for r in v2[:3]] == [
        ('mobilenetv2', 1.0, 0), ('mobilenetv2_asymm', 1.0, 1), ('mobilenetv2_asymm', 1.0, 2)]
    assert (v2[0]['macs'], v2[0]['params']) == (300774272, 3503872)
    assert [c[1:] for c in v2[0]['checkpoints']] == [(72.04, 90.57)]
    for row in rows[:24]:
        key = (row['model'], row['multiplier'], row['asymmrate'])
        if key in counts:
            ref = counts[key]
            assert (row['macs'], row['params'], row['params_paper']) == (
                int(ref['macs']), int(ref['params_exact']), int(ref['params_paper_convention'])), key
        else:
            assert row['multiplier'] == 0.35 and row['asymmrate'] == 2
            assert 'expansion 32, asymmrate 2' in row['invalid']
    by_key = {(r['model'], r['multiplier'], r['asymmrate']): r for r in rows}
    assert by_key['asymmnet_large', 1.0, 1]['paper']['top1'] == 75.4
    assert by_key['asymmnet_large', 0.5, 1]['paper']['madds'] == 67.2e6
    assert by_key['asymmnet_small', 1.0, 1]['paper']['params_paper'] == 3.1e6
    assert ('asymmnet_large-released', 75.42, 92.51) in by_key['asymmnet_large', 1.0, 1]['checkpoints']
    assert [c[1:] for c in by_key['asymmnet_large', 1.0, 0]['checkpoints']] == [(75.32, 92.30)]
    assert [c[1:] for c in by_key['asymmnet_small', 1.0, 0]['checkpoints']] == [(67.72, 87.51)]
    code, out = _run(['--summary'], capsys)
    assert code == 0
    assert '216,918,096   6,076,608   5,991,776  75.4 / 5.99M / 216.9M' in out
    assert out.count('invalid configuration') == 2


def test_summary_of_one_model_verbose(capsys, tmp_path):
    out_json = str(tmp_path / 's.json')
    code, out = _run(['--summary', '--model', 'mobilenetv3_large', '--verbose', '--json', out_json], capsys)
    assert code == 0
    rows = json.loads(open(out_json).read())['summary']
    assert len(rows) == 1 and rows[0]['macs'] == 216589760 and rows[0]['params'] == 5481752
    assert 'features.3.conv1.conv' in out and 'output.0' in out and '75.32 / 92.30' in out


# ---------------------------------------------------------------------------
# Errors name the problem


@pytest.mark.parametrize('argv,message', [
    (SMALL_ARGS + ['--params', '/nonexistent.params', '--dataset', 'demo'], 'no such parameter file'),
    (SMALL_ARGS + ['--dataset', 'demo'], 'give exactly one of --params FILE or --pretrained'),
    (['--model', 'mobilenetv3_small', '--asymmrate', '1', '--params', 'x', '--dataset', 'demo'],
     'mobilenetv3_small takes no asymmrate'),
    (['--model-prefix', '/nonexistent/m', '--dataset', 'demo'], '/nonexistent/m-symbol.json does not exist'),
    (['--dataset', 'demo'], 'name a model'),
    (SMALL_ARGS + ['--params', 'x'], 'give exactly one data source'),
    (SMALL_ARGS + ['--params', 'x', '--rec-val', '/nonexistent.rec'], '/nonexistent.rec'),
    (['--summary', '--benchmark'], 'choose one'),
    (['--verbose'], '--verbose goes with --summary --model'),
])
def test_errors_are_clear(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_checkpoint_of_another_shape_and_too_few_classes(small_net, tmp_path, capsys):
    params = str(tmp_path / 'net.params')
    small_net.save_parameters(params)
    with pytest.raises(SystemExit):
        main(['--model', 'asymmnet_small', '--width-scale', '0.5', '--classes', '10', '--params', params,
              '--dataset', 'demo'])
    err = capsys.readouterr().err
    assert params in err and 'has shape' in err
    net = random_weights(ga.get_model('asymmnet_small', multiplier=0.35, classes=5))
    batches, info = eval_batches(dataset='demo')
    from gluon_asymmnet.evaluation import evaluate
    with pytest.raises(EvalError, match='the data has 10 classes but the model predicts 5'):
        evaluate(net, batches, info)
