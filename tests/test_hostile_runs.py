"""Hostile inputs and faults at the command lines and in training runs (issue 11, upper layers).

Each test is named after the issue's numbered case. tests/test_hostile.py
holds the lower layers (the safe parameter-file reader, export, store,
pack). Cases that could crash the interpreter run in a subprocess, which
must exit with one line and no signal; every refusal leaves the files as
they were.
"""
import glob
import hashlib
import json
import os
import re
import struct

import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from conftest import ROOT, randomized
from faults import needs_mounts, python, python_with_mount
from gluon_asymmnet.checkpoint import CheckpointError

SMALL = dict(multiplier=0.35, classes=10)
X = mx.nd.array(np.random.RandomState(3).uniform(-1, 1, (2, 3, 32, 32)))


def sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree(folder, log='train_imagenet.log'):
    """Every file under ``folder`` with its sha256: what a refusal must leave as it was.

    A run's log is left out: a launch refused after it opened the log has appended its configuration.
    """
    return {os.path.relpath(p, str(folder)): sha(p) for p in glob.glob(os.path.join(str(folder), '**'), recursive=True)
            if os.path.isfile(p) and os.path.basename(p) != log}


def error_lines(stderr):
    """The lines of a command's stderr, without the thread note eval.py prints under OMP_NUM_THREADS."""
    return [line for line in stderr.strip().splitlines() if 'OpenMP thread' not in line]


# -- 1. every reader of a parameter file is the safe one ---------------------------------------------

_RAW_READERS = re.compile(r'\bnd\.load\(|\.load_parameters\(|collect_params\(\)\.load\(|SymbolBlock\.imports\(|'
                          r'\bsym\.load\(|\bload_states\(')


def test_1_no_module_reads_parameters_or_pickles_around_the_safe_reader():
    """mx.nd.load trusts the sizes in a file (a damaged header is a segfault); Trainer.load_states unpickles."""
    found = []
    for path in glob.glob(os.path.join(ROOT, 'gluon_asymmnet', '**', '*.py'), recursive=True):
        with open(path) as f:
            for number, line in enumerate(f, 1):
                code = line.split('#')[0]
                if _RAW_READERS.search(code) and '``' not in code:
                    found.append('%s:%d: %s' % (os.path.relpath(path, ROOT), number, line.strip()))
    assert found == [os.path.join('gluon_asymmnet', 'training', 'run_state.py') + ':%d: %s' % (n, s)
                     for n, s in _allowed_states_reader()], found


def _allowed_states_reader():
    """The one call of Trainer.load_states: after the .states file's sha256 was checked against the run's .json."""
    path = os.path.join(ROOT, 'gluon_asymmnet', 'training', 'run_state.py')
    with open(path) as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1) if 'trainer.load_states(' in line.split('#')[0]]


@pytest.fixture(scope='module')
def damaged(tmp_path_factory):
    """The issue's reproduction: an exported -0000.params whose int32 at bytes 32..35 (the first ndim) is -1."""
    folder = tmp_path_factory.mktemp('damaged')
    net = randomized('asymmnet_small', SMALL, seed=1)
    net.hybridize()
    net(X)
    net.export(str(folder / 'good'), epoch=0)
    with open(str(folder / 'good-0000.params'), 'rb') as f:
        data = bytearray(f.read())
    data[32:36] = struct.pack('<i', -1)
    with open(str(folder / 'bad-0000.params'), 'wb') as f:
        f.write(bytes(data))
    with open(str(folder / 'good-symbol.json'), 'rb') as f:
        (folder / 'bad-symbol.json').write_bytes(f.read())
    return dict(folder=folder, net=net, prefix=str(folder / 'bad'), params=str(folder / 'bad-0000.params'),
                good=str(folder / 'good'))


_CLIS = '''
import contextlib, io, json, sys
from gluon_asymmnet.evaluation.cli import main as eval_main
from gluon_asymmnet.training.cli import main as train_main
results = {}
for name, script, argv in json.loads(sys.argv[1]):
    main = {'eval': eval_main, 'train': train_main}[script]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    results[name] = [code, err.getvalue()]
print(json.dumps(results))
'''


def test_1_eval_and_teacher_refuse_the_damaged_file_with_one_line(damaged, tmp_path):
    """eval.py --model-prefix and train_imagenet.py --teacher <GluonCV model> --teacher-params: exit 2, no segfault."""
    before = tree(damaged['folder'])
    calls = [('eval', 'eval', ['--model-prefix', damaged['prefix'], '--dataset', 'demo', '--no-progress']),
             ('teacher', 'train', ['--teacher', 'mobilenet0.25', '--teacher-params', damaged['params'],
                                   '--save-dir', str(tmp_path / 'run'), '-j', '0', '--num-epochs', '1'])]
    run = python(_CLIS, json.dumps(calls))
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    expected = '%s: not a valid MXNet parameter file: array #0 (at byte 24) has -1 dimensions' % damaged['params']
    assert results['eval'][0] == 2 and error_lines(results['eval'][1]) == ['error: ' + expected]
    assert results['teacher'][0] == 2 and error_lines(results['teacher'][1]) == [
        'train_imagenet.py: error: --teacher mobilenet0.25: ' + expected]
    assert before == tree(damaged['folder'])
    assert not glob.glob(str(tmp_path / 'run' / '*.params'))


def test_1_gluoncv_teachers_load_through_the_safe_reader(tmp_path):
    """A GluonCV network's save_parameters file, and the prefixed names of its oldest files, both load."""
    from gluoncv.model_zoo import get_model as gcv_get_model
    from gluon_asymmnet.training import build_teacher
    net = gcv_get_model('mobilenet0.25', classes=10)
    net.initialize(mx.init.Xavier(magnitude=2))
    expected = net(X).asnumpy()
    net.save_parameters(str(tmp_path / 'structural.params'))
    net.collect_params().save(str(tmp_path / 'prefixed.params'))
    for name in ('structural', 'prefixed'):
        teacher = build_teacher('mobilenet0.25', str(tmp_path / (name + '.params')), 10, [mx.cpu()], hybridize=False)
        assert np.array_equal(teacher(X).asnumpy(), expected), name
    other = gcv_get_model('mobilenet0.25', classes=7)
    other.initialize()
    other(X)
    other.save_parameters(str(tmp_path / 'other.params'))
    with pytest.raises(ValueError, match=r'^--teacher mobilenet0.25: .*other.params .*has shape \(7, 256\) in the file, '
                                         r'the network expects \(10, 0\)'):
        build_teacher('mobilenet0.25', str(tmp_path / 'other.params'), 10, [mx.cpu()])


# -- 2. exported graphs and parameters that do not belong together -----------------------------------

def test_2_model_prefix_with_another_widths_params_or_a_bad_symbol_file(damaged, tmp_path, capsys):
    from gluon_asymmnet.evaluation import main
    base = tmp_path / 'm'
    with open(damaged['good'] + '-symbol.json', 'rb') as f:
        graph = f.read()
    wider = ga.get_model('asymmnet_small', multiplier=0.5, classes=10, prefix=damaged['net'].prefix)
    wider.initialize()
    wider.hybridize()
    wider(X)
    wider.export(str(tmp_path / 'wider'), epoch=0)
    cases = {'width': (graph, open(str(tmp_path / 'wider-0000.params'), 'rb').read(),
                       r'm-0000.params does not fit .*m-symbol.json: parameter \S+ has shape \([\d, ]+\) in the '
                       r'file, the graph expects \([\d, ]+\) for input shape \(1, 3, 32, 32\)$'),
             'empty': (b'', None, r'm-symbol.json: the file is empty \(0 bytes\)'),
             'truncated': (graph[:len(graph) // 3], None, r'm-symbol.json: not an MXNet symbol JSON: .*truncated'),
             'binary': (b'\xff\xfe\x00\x01', None, r'm-symbol.json: not an MXNet symbol JSON: byte 0 is not UTF-8')}
    with open(damaged['good'] + '-0000.params', 'rb') as f:
        params = f.read()
    for name, (symbol, weights, pattern) in cases.items():
        (tmp_path / 'm-symbol.json').write_bytes(symbol)
        (tmp_path / 'm-0000.params').write_bytes(weights or params)
        with pytest.raises(SystemExit) as exit:
            main(['--model-prefix', str(base), '--dataset', 'demo', '--no-progress'])
        err = capsys.readouterr().err
        assert exit.value.code == 2, name
        lines = error_lines(err)
        assert len(lines) == 1 and re.match('^error: %s' % re.escape(str(tmp_path)) + '/' + pattern, lines[0]), lines


# -- training runs on tiny data ---------------------------------------------------------------------

N_TRAIN, N_VAL = 24, 8


def _images(n, seed, size=16):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, size, size, 3)).astype(np.uint8), np.arange(n) % 4


def _write_records(path, labels, payloads=None, seed=0):
    """A .rec/.idx pair written record by record, so labels and payloads need not be valid (pack_arrays checks)."""
    import cv2
    rng = np.random.RandomState(seed)
    writer = mx.recordio.MXIndexedRecordIO(path + '.idx', path + '.rec', 'w')
    for i, label in enumerate(labels):
        payload = payloads[i] if payloads is not None else \
            cv2.imencode('.jpg', rng.randint(0, 256, (16, 16, 3)).astype(np.uint8))[1].tobytes()
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(label), i, 0), payload))
    writer.close()
    return dict(rec=path + '.rec', idx=path + '.idx')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from gluon_asymmnet.pack import pack_arrays
    root = tmp_path_factory.mktemp('tiny')
    files = {}
    for split, n, seed in (('train', N_TRAIN, 1), ('val', N_VAL, 2)):
        out = pack_arrays(*_images(n, seed), str(root / split))
        files['rec_' + split], files['rec_%s_idx' % split] = out['rec'], out['idx']
    return files


def args(files, save_dir, *extra, epochs=2):
    return ['--rec-train', files['rec_train'], '--rec-train-idx', files['rec_train_idx'],
            '--rec-val', files['rec_val'], '--rec-val-idx', files['rec_val_idx'], '--classes', '4', '--dataset', 'tiny',
            '--model', 'asymmnet_small', '--width-scale', '0.35', '--input-size', '16', '--batch-size', '8',
            '--num-epochs', str(epochs), '--lr', '0.05', '--lr-mode', 'step', '--lr-decay-epoch', '10', '-j', '0',
            '--save-frequency', '1', '--log-interval', '0'] + (['--save-dir', str(save_dir)] if save_dir else []) + \
        list(extra)


def run(argv, capsys):
    """train_imagenet.py's main in this process: (exit status, stderr lines)."""
    from gluon_asymmnet.training.cli import main
    code = main(argv)
    return code, error_lines(capsys.readouterr().err)


def checkpoint_files(folder):
    return sorted(n for n in os.listdir(str(folder)) if n.endswith(('.params', '.states', '.json')))


@pytest.fixture(scope='module')
def finished(tiny, tmp_path_factory):
    """A finished 2-epoch run (checkpoints of epochs 0 and 1), to resume, tamper with and copy."""
    from gluon_asymmnet.training import parse_args, train
    folder = tmp_path_factory.mktemp('finished')
    train(parse_args(args(tiny, folder)))
    return folder


def copy_run(finished, folder):
    import shutil
    shutil.copytree(str(finished), str(folder))
    return folder


class _Marker:
    """A pickle that creates ``path`` when it is unpickled: proof that a file was (not) unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


def hostile_pickle(path, marker):
    import pickle
    with open(path, 'wb') as f:
        pickle.dump(_Marker(str(marker)), f)


# -- 3. validation data checked up front; an evaluation failure loses no epoch -----------------------

def test_3_validation_records_all_corrupt_are_refused_before_training(tiny, tmp_path, capsys):
    bad = _write_records(str(tmp_path / 'val'), [0, 1, 2, 3] * 3, payloads=[b'\xff\xd8 not a JPEG'] * 12)
    files = dict(tiny, rec_val=bad['rec'], rec_val_idx=bad['idx'])
    code, lines = run(args(files, tmp_path / 'run'), capsys)
    assert code == 2 and lines == ['train_imagenet.py: error: %s: none of the 12 records checked (spread over all 12) '
                                   'holds a decodable image; the data is corrupt or not images' % bad['rec']]
    assert checkpoint_files(tmp_path / 'run') == []


class _FailingValidation:
    """Validation batches that held no sample in epoch ``fail_at`` (as if every record had turned corrupt)."""

    def __init__(self, batches, fail_at):
        self.batches, self.fail_at, self.passes = batches, fail_at, 0

    def __getattr__(self, name):
        return getattr(self.batches, name)

    def __iter__(self):
        self.passes += 1
        return iter(()) if self.passes - 1 == self.fail_at else iter(self.batches)


def test_3_an_evaluation_failure_saves_the_trained_epoch_first(tiny, tmp_path):
    from gluon_asymmnet.data import DataError
    from gluon_asymmnet.training import build_data, parse_args, train
    cfg = parse_args(args(tiny, tmp_path, '--save-frequency', '5', epochs=3))
    train_batches, val_batches = build_data(cfg)
    with pytest.raises(DataError, match=r'^validation after epoch 1 failed: evaluate_accuracy: the batches held no '
                                        r'sample; the trained epoch is saved \(.*/tiny-asymmnet_small-1.params\): '
                                        r'fix the validation data and continue with --resume$'):
        train(cfg, loaders=(train_batches, _FailingValidation(val_batches, fail_at=1)))
    assert 'tiny-asymmnet_small-1.json' in checkpoint_files(tmp_path)
    resumed = train(parse_args(args(tiny, tmp_path, '--save-frequency', '5', '--resume', epochs=3)))
    assert [h['epoch'] for h in resumed['history']] == [0, 1, 2] and resumed['history'][1]['top1'] is None


# -- 4. one-line errors, exit 2, naming the path and the fix -------------------------------------------

def test_4_train_seed_and_save_dir_mistakes(tiny, tmp_path, capsys):
    (tmp_path / 'a_file').write_text('keep me')
    cases = [(['--seed', '-1'], tmp_path / 'run', '--seed must be in [0, 4294967295], got -1'),
             ([], tmp_path / 'a_file', '--save-dir {0}: {0} is a file, not a folder; give a folder you can write to'),
             ([], tmp_path / 'a_file' / 'sub', '--save-dir {0}/sub: {0} is a file, not a folder; give a folder you '
                                               'can write to')]
    for extra, save_dir, message in cases:
        code, lines = run(args(tiny, save_dir, *extra), capsys)
        assert code == 2 and lines == ['train_imagenet.py: error: ' + message.format(tmp_path / 'a_file')]
    assert sorted(os.listdir(str(tmp_path))) == ['a_file'] and (tmp_path / 'a_file').read_text() == 'keep me'


def test_4_eval_json_and_gpus_are_checked_before_evaluating(tmp_path, capsys, monkeypatch):
    from gluon_asymmnet.evaluation import cli
    (tmp_path / 'a_file').write_text('keep me')
    evaluated = []
    monkeypatch.setattr(cli, 'evaluate', lambda *a, **k: evaluated.append(1))
    base = ['--model', 'asymmnet_small', '--width-scale', '0.35', '--classes', '10', '--params',
            str(tmp_path / 'none.params'), '--dataset', 'demo', '--no-progress']
    cases = [(['--json', str(tmp_path / 'a_file' / 'x.json')],
              '--json {0}/a_file/x.json cannot be written: {0}/a_file is a file, not a folder; give a path in a '
              'folder you can write'),
             (['--json', str(tmp_path)], '--json {0} is a folder; give a file name, e.g. {0}/eval.json')]
    if mx.context.num_gpus() == 0:
        cases.append((['--num-gpus', '1'], '--num-gpus 1: this MXNet sees no GPU (a CPU-only build, or no GPU '
                                           'visible); drop --num-gpus to evaluate on the CPU'))
    for extra, message in cases:
        with pytest.raises(SystemExit) as exit:
            cli.main(base + extra)
        assert exit.value.code == 2 and error_lines(capsys.readouterr().err) == ['error: ' + message.format(tmp_path)]
    assert not evaluated and sorted(os.listdir(str(tmp_path))) == ['a_file']


@needs_mounts
def test_4_read_only_save_dir_and_store_root(tiny, tmp_path):
    """train_imagenet.py --save-dir and eval.py --pretrained --root on a read-only file system."""
    target = tmp_path / 'read_only'
    target.mkdir()
    calls = [('train', 'train', args(tiny, None) + ['--save-dir', str(target / 'run')]),
             ('store', 'eval', ['--model', 'mobilenetv3_small', '--classes', '1000', '--pretrained',
                                '--root', str(target / 'store'), '--dataset', 'demo', '--no-progress'])]
    run_ = python_with_mount(target, 'ro', _CLIS, json.dumps(calls))
    assert run_.returncode == 0, run_.stderr[-2000:]
    results = json.loads(run_.stdout.strip().splitlines()[-1])
    assert results['train'][0] == 2 and error_lines(results['train'][1]) == [
        'train_imagenet.py: error: --save-dir %s/run: %s is on a read-only file system; give a folder you can write to'
        % (target, target)]
    assert results['store'][0] == 2 and error_lines(results['store'][1]) == [
        'error: cannot create the model store folder %s: Read-only file system; point root= (or MXNET_HOME) at a '
        'folder you can write' % (target / 'store')]
    assert os.listdir(str(target)) == []


_FULL_DISK = '''
import glob, json, os, sys
from gluon_asymmnet.training.cli import main
from gluon_asymmnet.training.run_state import load_meta
folder = sys.argv[1]
code = main(json.loads(sys.argv[2]) + ['--save-dir', folder])
complete = []
for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
    load_meta(path)  # every checkpoint left is whole: its files exist with their recorded sha256
    complete.append(os.path.basename(path))
print(json.dumps(dict(code=code, complete=complete, names=sorted(os.listdir(folder)))))
'''


@needs_mounts
def test_4_full_disk_while_saving_names_the_disk_and_keeps_whole_checkpoints(tiny, tmp_path):
    """A 5 MiB tmpfs holds one checkpoint (1.8 MB .params, 1.8 MB .states) of AsymmNet-S x0.35 but not two."""
    target = tmp_path / 'small_disk'
    target.mkdir()
    run_ = python_with_mount(target, 'size=5m', _FULL_DISK, target, json.dumps(args(tiny, None)))
    assert run_.returncode == 0, run_.stderr[-2000:]
    result = json.loads(run_.stdout.strip().splitlines()[-1])
    lines = error_lines(run_.stderr)
    assert result['code'] == 2 and len(lines) == 1, run_.stderr[-2000:]
    assert re.match(r'^train_imagenet.py: error: cannot save the checkpoint of epoch \d as %s/\S+: the disk holding %s '
                    r'is full \(only [\d.]+ MiB free\); free space or give another --save-dir, then continue with '
                    r'--resume \(last complete checkpoint: %s/\S+-best.params\)$' % ((re.escape(str(target)),) * 3),
                    lines[0]), lines[0]
    assert len(result['complete']) == 1
    stems = {os.path.splitext(n)[0] for n in result['names'] if n.endswith(('.params', '.states'))}
    assert stems == {os.path.splitext(result['complete'][0])[0]}  # nothing half-written beside it


# -- 6. labels outside the model's classes; more class folders than classes --------------------------

def _non_spot(n):
    """A record position the loader does not check up front (it is checked when a pass reads it)."""
    from gluon_asymmnet.data.loader import _SPOT_DECODES
    spots = set(np.linspace(0, n - 1, min(_SPOT_DECODES, n)).astype(int))
    return min(set(range(n)) - spots)


@pytest.mark.parametrize('label', [250, 999, -1, 2.5])
def test_6_labels_outside_the_classes_are_refused_up_front(tiny, tmp_path, capsys, label):
    """250 and 999 into a 200-class model, a negative and a fractional label, among the records checked first."""
    labels = [0, 1, 2, 3] * 5
    labels[7] = label
    bad = _write_records(str(tmp_path / 'bad'), labels)
    files = dict(tiny, rec_train=bad['rec'], rec_train_idx=bad['idx'])
    assert 7 != _non_spot(20)
    code, lines = run(args(files, tmp_path / 'run', '--classes', '200'), capsys)
    assert code == 2 and lines == ['train_imagenet.py: error: record 7 of %s has label %g; labels must be class indices '
                                   'in [0, 200) for a model of 200 classes' % (bad['rec'], label)]
    assert checkpoint_files(tmp_path / 'run') == []


def test_6_a_label_outside_the_classes_stops_the_pass_that_reads_it(tiny, tmp_path, capsys):
    labels = [0, 1, 2, 3] * 5
    k = _non_spot(20)
    labels[k] = 250
    bad = _write_records(str(tmp_path / 'bad'), labels)
    code, lines = run(args(dict(tiny, rec_train=bad['rec'], rec_train_idx=bad['idx']), tmp_path / 'run',
                           '--classes', '200'), capsys)
    assert code == 2 and lines == ['train_imagenet.py: error: record %d of %s has label 250; labels must be class '
                                   'indices in [0, 200) for a model of 200 classes' % (k, bad['rec'])]
    assert checkpoint_files(tmp_path / 'run') == []  # refused before the batch trained: no epoch ended


def test_6_more_class_folders_than_the_dataset_has_classes(tmp_path):
    from gluon_asymmnet.training import ConfigError, TrainConfig
    for c in range(205):
        (tmp_path / 'train' / ('n%05d' % c)).mkdir(parents=True)
    with pytest.raises(ConfigError, match=r'^--data-dir %s \(class folders of %s\) has 205 classes \(n00000, n00001, '
                                          r'n00002, ...\), more than the 200 of --dataset imagenet200: give the data of '
                                          r'those classes, or drop --dataset'
                       % (re.escape(str(tmp_path)), re.escape(str(tmp_path / 'train')))):
        TrainConfig(data_dir=str(tmp_path), dataset='imagenet200')


# -- 8. resuming with other settings or data -----------------------------------------------------------

def test_8_resume_with_other_settings_or_data_is_refused_naming_each_change(tiny, finished, tmp_path):
    from gluon_asymmnet.pack import pack_arrays
    from gluon_asymmnet.training import ConfigError, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    before = tree(folder)
    more = pack_arrays(*_images(N_TRAIN + 8, 5), str(tmp_path / 'more'))
    files = dict(tiny, rec_train=more['rec'], rec_train_idx=more['idx'])
    changed = args(files, folder, '--resume', '--batch-size', '4', '--lr', '0.1', '--seed', '1', epochs=3)
    with pytest.raises(ConfigError) as err:
        train(parse_args(changed))
    message = str(err.value)
    assert re.match(r"^--resume \S+/tiny-asymmnet_small-1.json: this run differs from the checkpoint's: "
                    r'--batch-size 8 -> 4; --lr 0.05 -> 0.1; --seed 0 -> 1; training data 24 images, \d+ bytes, content '
                    r'\w{16} in \S+/train.rec -> 32 images, \d+ bytes, content \w{16} in \S+/more.rec; resumed so it '
                    r'would not continue that '
                    r'run\. .* add --resume-with-changes ', message), message
    assert before == tree(folder)
    # Moved data is the same data; a longer step schedule extends the run without changing its first epochs.
    import shutil
    moved = dict(tiny, rec_train=str(tmp_path / 'train.rec'), rec_train_idx=str(tmp_path / 'train.idx'))
    for key in ('rec_train', 'rec_train_idx'):
        shutil.copy(tiny[key], moved[key])
    extended = train(parse_args(args(moved, folder, '--resume', epochs=3)))
    assert [h['epoch'] for h in extended['history']] == [0, 1, 2]
    # Accepted changes: the run goes on and the log says it is no longer a continuation.
    accepted = train(parse_args(args(tiny, folder, '--resume', '--lr', '0.1', '--resume-with-changes', epochs=4)))
    log = open(accepted['log_file']).read()
    assert re.search(r'warning: --resume-with-changes: --lr 0.05 -> 0.1; this run is no longer a continuation of '
                     r'\S+/tiny-asymmnet_small-2.json', log)
    assert [h['epoch'] for h in accepted['history']] == [0, 1, 2, 3]


# -- 12. --save-frequency 0: only best and last ----------------------------------------------------------

def test_12_save_frequency_0_keeps_the_last_epoch_and_resume_continues_after_it(tiny, tmp_path, monkeypatch):
    from gluon_asymmnet.training import loop, parse_args, train
    scores = iter([0.5, 0.25, 0.75])  # epoch 1, the last of the first run, is not its best
    monkeypatch.setattr(loop, 'evaluate', lambda *a, **k: (next(scores), 1.0))
    first = train(parse_args(args(tiny, tmp_path, '--save-frequency', '0', epochs=2)))
    assert checkpoint_files(tmp_path) == ['0.5000-tiny-asymmnet_small-0-best.%s' % e for e in ('json', 'params',
                                                                                                'states')] + \
        ['tiny-asymmnet_small-1.%s' % e for e in ('json', 'params', 'states')]
    assert first['best_epoch'] == 0
    resumed = train(parse_args(args(tiny, tmp_path, '--save-frequency', '0', '--resume', epochs=3)))
    assert [h['epoch'] for h in resumed['history']] == [0, 1, 2]
    assert 'resuming from %s at epoch 2, update 6' % (tmp_path / 'tiny-asymmnet_small-1.params') in \
        open(resumed['log_file']).read()
    # The new last epoch is the best: saved once, under its best name.
    assert [n for n in checkpoint_files(tmp_path) if '-2' in n] == [
        '0.7500-tiny-asymmnet_small-2-best.%s' % e for e in ('json', 'params', 'states')]


# -- 14. one run per run folder ---------------------------------------------------------------------------

def test_14_a_second_run_on_a_held_folder_is_refused_naming_the_first(tiny, tmp_path, capsys):
    from gluon_asymmnet.training.run_lock import RunLock
    folder = tmp_path / 'run'
    folder.mkdir()
    with RunLock(str(folder)):
        owner = json.loads((folder / '.train.lock.owner').read_text())
        before = tree(folder, log=None)
        code, lines = run(args(tiny, folder), capsys)
        assert before == tree(folder, log=None)  # not even the log
    assert code == 2 and len(lines) == 1
    assert lines[0] == ("train_imagenet.py: error: --save-dir %s is in use by another training run (pid %d on %s, "
                        "started %s: %s); wait for it to end or give another --save-dir (two runs in one folder "
                        "overwrite each other's checkpoints)"
                        % (folder, os.getpid(), owner['host'], owner['started'], owner['command']))
    assert not (folder / '.train.lock.owner').exists()
    with RunLock(str(folder)):  # released: the folder can be held again
        pass


# -- 15. a checkpoint description naming files outside its folder ------------------------------------------

@pytest.mark.parametrize('key, where', [('states', 'absolute'), ('params', 'parent'), ('states', 'subfolder')])
def test_15_checkpoint_json_naming_files_outside_its_folder_is_refused_before_reading(tiny, finished, tmp_path, key,
                                                                                        where):
    from gluon_asymmnet.training import ConfigError, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    marker = tmp_path / 'unpickled'
    (tmp_path / 'sub').mkdir()
    target = {'absolute': tmp_path / 'evil.states', 'parent': tmp_path / 'evil.states',
              'subfolder': folder / 'sub' / 'evil.states'}[where]
    target.parent.mkdir(exist_ok=True)
    hostile_pickle(str(target), marker)
    name = {'absolute': str(target), 'parent': '../evil.states', 'subfolder': 'sub/evil.states'}[where]
    meta_path = folder / 'tiny-asymmnet_small-1.json'
    meta = json.loads(meta_path.read_text())
    meta[key] = name
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r'^%s: "%s" is %s; a checkpoint names its files by plain file names in its '
                                          r'own folder, so it is refused and nothing it names was read$'
                                          % (re.escape(str(meta_path)), key, re.escape(repr(name)))):
        train(parse_args(args(tiny, folder, '--resume', str(meta_path), epochs=3)))
    assert not marker.exists()


# -- 16. no pickle but the run's own -------------------------------------------------------------------------

def test_16_a_states_file_other_than_the_one_recorded_is_not_unpickled(tiny, finished, tmp_path):
    from gluon_asymmnet.training import ConfigError, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    marker = tmp_path / 'unpickled'
    hostile_pickle(str(folder / 'tiny-asymmnet_small-1.states'), marker)
    with pytest.raises(ConfigError, match=r'tiny-asymmnet_small-1.json: \S+/tiny-asymmnet_small-1.states is not the '
                                          r'file this checkpoint wrote \(its sha256 differs from the one recorded\); '
                                          r'nothing was loaded$'):
        train(parse_args(args(tiny, folder, '--resume', epochs=3)))
    assert not marker.exists()
    # A checkpoint of an older release (no sha256 recorded): refused, with the explicit flags for one's own files.
    meta_path = folder / 'tiny-asymmnet_small-0.json'
    meta = json.loads(meta_path.read_text())
    del meta['sha256']
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r'records no sha256 of tiny-asymmnet_small-0.params .* continue with '
                                          r'--resume-params \S+-0.params --resume-states \S+-0.states --resume-epoch 1$'):
        train(parse_args(args(tiny, folder, '--resume', str(meta_path), epochs=3)))


def test_16_a_crafted_states_file_runs_no_code_even_with_a_matching_json(tiny, finished, tmp_path):
    """The .json recording a crafted file's hash (a downloaded run folder), or --resume-states naming it."""
    from gluon_asymmnet.training import ConfigError, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    marker = tmp_path / 'unpickled'
    states = folder / 'tiny-asymmnet_small-1.states'
    hostile_pickle(str(states), marker)
    meta_path = folder / 'tiny-asymmnet_small-1.json'
    meta = json.loads(meta_path.read_text())
    meta['sha256']['states'] = sha(str(states))
    meta_path.write_text(json.dumps(meta))
    refused = r'^%s is not an optimizer state of a Trainer \(it calls io.open, which no optimizer state ' \
              r'holds\); it was not loaded$' % re.escape(str(states))
    with pytest.raises(ConfigError, match=refused):
        train(parse_args(args(tiny, folder, '--resume', epochs=3)))
    with pytest.raises(ConfigError, match=refused):
        train(parse_args(args(tiny, tmp_path / 'other', '--resume-params', str(folder / 'tiny-asymmnet_small-1.params'),
                              '--resume-states', str(states), '--resume-epoch', '2', epochs=3)))
    assert not marker.exists()


def test_16_a_params_file_alone_gives_weights_only_and_never_a_pickle(tiny, finished, tmp_path):
    from gluon_asymmnet.training import parse_args, train
    import shutil
    downloaded = tmp_path / 'downloads'
    downloaded.mkdir()
    shutil.copy(str(finished / 'tiny-asymmnet_small-1.params'), str(downloaded / 'model.params'))
    marker = tmp_path / 'unpickled'
    hostile_pickle(str(downloaded / 'model.states'), marker)
    out = train(parse_args(args(tiny, tmp_path / 'run', '--resume', str(downloaded / 'model.params'), epochs=1)))
    assert not marker.exists()
    log = open(out['log_file']).read()
    assert ('warning: --resume %s: no %s beside it, so it is not a checkpoint of this trainer: only its weights are '
            'loaded, at epoch 0 with a new optimizer state' % (downloaded / 'model.params', downloaded / 'model.json')) \
        in log
    assert [h['epoch'] for h in out['history']] == [0]
