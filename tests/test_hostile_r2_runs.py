"""Hostile inputs, round 2 (issue 21): signals, used run folders, hand-edited records, limits that disagree.

Each test is named after the issue's numbered case (``test_r2_case_NN_...``).
The training runs are the tiny ones of tests/test_hostile_runs.py (24
RecordIO images of 16 px, AsymmNet-S x0.35).
"""
import dataclasses
import json
import math
import os
import re

import pytest

import gluon_asymmnet as ga
from test_hostile_runs import (_FailingValidation, args, checkpoint_files, copy_run, error_lines, finished, run,  # noqa
                               tiny, tree)


def strict_json(path):
    """A file's JSON, refusing NaN and Infinity (which json.load accepts, and other readers do not)."""
    def refuse(name):
        raise ValueError('%s: %s is not JSON' % (path, name))
    with open(str(path)) as f:
        return json.load(f, parse_constant=refuse)


# -- 4. non-finite and absurd widths and rates --------------------------------------------------------------

@pytest.mark.parametrize('kwargs, message', [
    (dict(multiplier=float('inf')), 'multiplier must be a finite number, got inf'),
    (dict(multiplier=1e308), r'multiplier must be in \(0, 10\], got 1e\+308'),
    (dict(asymmrate=float('nan')), 'asymmrate must be a finite number, got nan'),
    (dict(shuffle_groups=float('inf')), 'shuffle_groups must be a finite number, got inf'),
    (dict(classes=float('inf')), 'classes must be a finite number, got inf'),
])
def test_r2_case_04_get_model_refuses_non_finite_and_absurd_arguments_by_name(kwargs, message):
    for name in ('asymmnet_small', 'mobilenetv2_asymm'):
        with pytest.raises(ValueError, match='^%s$' % message):
            ga.get_model(name, **kwargs)


def test_r2_case_04_width_scale_inf_in_training_summary_and_export(tiny, tmp_path, capsys):
    from gluon_asymmnet.evaluation import main as eval_main
    from gluon_asymmnet.export.cli import main as export_main
    (tmp_path / 'x.params').write_bytes(b'')
    for value, words in (('inf', 'a finite number, got inf'), ('1e308', r'in \(0, 10\], got 1e\+308'),
                         ('nan', 'a finite number, got nan')):
        code, lines = run(args(tiny, tmp_path / 'run', '--width-scale', value), capsys)
        assert code == 2 and len(lines) == 1 and re.match(
            r'^train_imagenet.py: error: --width-scale (must be|%s: multiplier must be) %s$'
            % (re.escape(str(float(value))), words.replace('number', '(number|number in .*)')), lines[0]), lines
        for main, argv in ((eval_main, ['--summary', '--model', 'asymmnet_small']),
                           (export_main, ['--model', 'asymmnet_small', '--params', str(tmp_path / 'x.params'),
                                          '--prefix', str(tmp_path / 'out')])):
            with pytest.raises(SystemExit) as exit:
                main(argv + ['--width-scale', value])
            assert exit.value.code == 2
            assert re.match(r'^error: --width-scale %s: multiplier must be %s$' % (re.escape(str(float(value))), words),
                            '\n'.join(error_lines(capsys.readouterr().err)))
    assert not (tmp_path / 'run').exists() or checkpoint_files(tmp_path / 'run') == []
    assert sorted(os.listdir(str(tmp_path))) in (['run', 'x.params'], ['x.params'])


# -- 11. every numeric training flag: finite and in range; the run's JSON holds no NaN ---------------------

NUMERIC = [f.name for f in dataclasses.fields(ga.training.TrainConfig)
           if f.type in (int, float) or f.type in (ga.training.config.Optional[int],
                                                   ga.training.config.Optional[float])]


def test_r2_case_11_every_numeric_flag_has_a_range_and_non_finite_values_are_refused():
    from gluon_asymmnet.training import ConfigError, TrainConfig
    from gluon_asymmnet.training.config import RANGES
    assert sorted(NUMERIC) == sorted(RANGES)
    for name in NUMERIC:
        for bad in (float('nan'), float('inf')):
            with pytest.raises(ConfigError, match=r'^--\S+ (must be a finite (number|integer) in \S+, \S+, got|'
                                                  r'\S+: \w+ must be a finite number, got) %s$' % bad):
                TrainConfig(**{name: bad})


@pytest.mark.parametrize('argv, message', [
    (['--momentum', 'nan'], r'--momentum must be a finite number in [0, 1), got nan'),
    (['--momentum', '-5'], r'--momentum must be in [0, 1), got -5.0'),
    (['--lr-decay', '-1'], r'--lr-decay must be in (0, 1], got -1.0'),
    (['--wd=-1e-4'], r'--wd must be in [0, 1), got -0.0001'),
    (['--warmup-lr', 'inf'], r'--warmup-lr must be a finite number in [0, inf), got inf'),
    (['--seed', '99999999999'], r'--seed must be in [0, 4294967295], got 99999999999'),
])
def test_r2_case_11_momentum_nan_negative_and_lr_decay_negative_are_refused(tiny, tmp_path, capsys, argv, message):
    code, lines = run(args(tiny, tmp_path / 'run', *argv), capsys)
    assert code == 2 and lines == ['train_imagenet.py: error: ' + message]
    assert not (tmp_path / 'run').exists() or checkpoint_files(tmp_path / 'run') == []


def test_r2_case_11_an_unvalidated_epoch_is_recorded_as_valid_json(tiny, tmp_path):
    from gluon_asymmnet.training import build_data, parse_args, train
    from gluon_asymmnet.training.run_state import _write_json
    cfg = parse_args(args(tiny, tmp_path, epochs=1))
    train_batches, val_batches = build_data(cfg)
    with pytest.raises(Exception, match='validation after epoch 0 failed'):
        train(cfg, loaders=(train_batches, _FailingValidation(val_batches, fail_at=0)))
    meta = strict_json(tmp_path / 'tiny-asymmnet_small-0.json')
    assert meta['history'][0]['top1'] is None and meta['history'][0]['top5'] is None
    with pytest.raises(ValueError, match='not JSON compliant: nan'):
        _write_json(dict(best_top1=math.nan))(str(tmp_path / 'x.json'))


# -- 22. limits that disagree -----------------------------------------------------------------------------

def test_r2_case_22_input_size_below_8_is_refused_by_training_eval_and_export_alike(tiny, tmp_path, capsys):
    from gluon_asymmnet.evaluation import main as eval_main
    from gluon_asymmnet.export.cli import main as export_main
    from gluon_asymmnet.preprocessing import MIN_INPUT_SIZE
    assert MIN_INPUT_SIZE == 8
    code, lines = run(args(tiny, tmp_path / 'run', '--input-size', '7'), capsys)
    assert code == 2 and lines == ['train_imagenet.py: error: --input-size must be >= 8, got 7']
    (tmp_path / 'x.params').write_bytes(b'')
    for main, argv in ((eval_main, ['--model', 'asymmnet_small', '--dataset', 'demo', '--no-progress']),
                       (export_main, ['--model', 'asymmnet_small', '--params', str(tmp_path / 'x.params'),
                                      '--prefix', str(tmp_path / 'out')])):
        with pytest.raises(SystemExit) as exit:
            main(argv + ['--input-size', '7'])
        assert exit.value.code == 2
        assert error_lines(capsys.readouterr().err) == ['error: --input-size 7: input_size must be an integer >= 8, '
                                                        'got 7']


def test_r2_case_22_export_batch_size_0_is_one_line(tmp_path, capsys):
    from gluon_asymmnet.export.cli import main as export_main
    with pytest.raises(SystemExit) as exit:
        export_main(['--model', 'asymmnet_small', '--params', str(tmp_path / 'x.params'), '--prefix',
                     str(tmp_path / 'out'), '--batch-size', '0'])
    assert exit.value.code == 2
    assert capsys.readouterr().err == ('error: --batch-size 0: it chooses the deployment form, so it needs a positive '
                                       'value and no --no-deploy\n')


# -- 8. a checkpoint record checked against its schema; a damaged newest one is refused by name ------------

NEWEST = 'tiny-asymmnet_small-1.json'


@pytest.mark.parametrize('edit, words', [
    (dict(config=[1, 2]), '"config" is [1, 2]; it must be an object'),
    (dict(history='x'), '"history" is \'x\'; it must be a list'),
    (dict(best_top1='high'), '"best_top1" is \'high\'; it must be a number in [0, 1]'),
    (dict(states=None), '"states" is null, but the run (--kvstore device) saved its optimizer state with every '
                        'checkpoint'),
    (dict(num_update=-100), '"num_update" is -100; it must be an integer >= 0'),
    (dict(epoch=-1), '"epoch" is -1; it must be an integer >= 0'),
    (dict(num_update=5), '"num_update" is 5 but the history reached 6 updates by epoch 1'),
    (dict(history=[{'epoch': 1, 'top1': 'NaN'}]), '"history[0].top1" is \'NaN\'; it must be a number in [0, 1] or '
                                                  'null'),
])
def test_r2_case_08_a_hand_edited_record_is_refused_naming_the_field(tiny, finished, tmp_path, edit, words):
    from gluon_asymmnet.training import ConfigError, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    meta = json.loads((folder / NEWEST).read_text())
    meta.update(edit)
    (folder / NEWEST).write_text(json.dumps(meta))
    before = tree(folder)
    with pytest.raises(ConfigError) as err:
        train(parse_args(args(tiny, folder, '--resume', epochs=3)))
    assert str(err.value) == ('--resume: the newest checkpoint in --save-dir %s is refused (move it away to resume '
                              'from the one before it, or name one with --resume FILE): %s: not a checkpoint record '
                              'this trainer wrote: %s; it is refused and nothing it names was read'
                              % (folder, folder / NEWEST, words))
    assert before == tree(folder)


@pytest.mark.parametrize('content, words', [
    (b'{"epoch": 1, ', r'Expecting property name enclosed in double quotes: line 1 column 14 \(char 13\)'),
    (b'', 'the file is empty'),
    (b'[1, 2]', 'it holds list, not an object'),
    (b'\xff\xfe', "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
])
def test_r2_case_08_a_damaged_newest_record_is_refused_not_skipped(tiny, finished, tmp_path, content, words):
    """Non-JSON, empty or array: --resume used to go on from the older checkpoint (or from epoch 0) without a word."""
    from gluon_asymmnet.training import ConfigError, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    (folder / NEWEST).write_bytes(content)
    before = tree(folder)
    with pytest.raises(ConfigError, match=r'^--resume: the newest checkpoint in --save-dir %s is refused .*: %s: '
                                          r'damaged checkpoint description \(%s\); it is refused and nothing it names '
                                          r'was read$' % (re.escape(str(folder)), re.escape(str(folder / NEWEST)),
                                                          words)):
        train(parse_args(args(tiny, folder, '--resume', epochs=3)))
    assert before == tree(folder)


# -- 10. a new run into a folder holding another run's checkpoints ---------------------------------------

def test_r2_case_10_a_used_save_dir_is_refused_unless_resume_or_overwrite(tiny, finished, tmp_path, capsys):
    from gluon_asymmnet.training import ConfigError, TrainConfig
    folder = copy_run(finished, tmp_path / 'run')
    before = tree(folder, log=None)
    code, lines = run(args(tiny, folder, '--lr', '0.1', epochs=1), capsys)
    assert code == 2 and len(lines) == 1 and re.match(
        r'^train_imagenet.py: error: --save-dir %s holds the checkpoints of another run \(asymmnet_small on tiny, '
        r'\d checkpoint\(s\), the newest of epoch 1: %s, written [\d: -]+\): continue it with --resume, start anew '
        r'there with --overwrite \(which removes them\), or give another --save-dir$'
        % (re.escape(str(folder)), re.escape(str(folder / NEWEST))), lines[0]), lines
    assert before == tree(folder, log=None)  # not even the log
    # Weights alone (a .params without its .json) start a new run at epoch 0: refused there too.
    import shutil
    shutil.copy(str(folder / 'tiny-asymmnet_small-0.params'), str(tmp_path / 'weights.params'))
    code, lines = run(args(tiny, folder, '--resume', str(tmp_path / 'weights.params'), epochs=1), capsys)
    assert code == 2 and 'holds the checkpoints of another run' in lines[0]
    assert before == tree(folder, log=None)
    with pytest.raises(ConfigError, match='--overwrite starts a new run .*; --resume continues it'):
        TrainConfig(**{'resume': 'latest', 'overwrite': True})
    code, lines = run(args(tiny, folder, '--lr', '0.1', '--overwrite', epochs=1), capsys)
    assert code == 0 and lines == []
    files = checkpoint_files(folder)  # the new run's epoch 0 only: nothing of the earlier run to resume by mistake
    assert files and all(re.search(r'-asymmnet_small-0(-best)?\.', n) for n in files), files
    log = (folder / 'train_imagenet.log').read_text()
    assert re.search(r'warning: --overwrite: removed .*tiny-asymmnet_small-1.json.* \(the checkpoints of the earlier '
                     r'run: ', log)


# -- 21. paths from flags ------------------------------------------------------------------------------------

@pytest.mark.parametrize('tag', [os.path.join('..', '..', 'x'), '..', 'a/b', 'x y'])
def test_r2_case_21_tag_name_is_validated_as_dataset_is(tiny, tmp_path, capsys, tag):
    code, lines = run(args(tiny, tmp_path / 'run', '--tag-name', tag), capsys)
    assert code == 2 and lines == ['train_imagenet.py: error: --tag-name %r: a name of letters, digits, "_", "." and '
                                   '"-" (it goes into file names)' % tag]
    assert os.listdir(str(tmp_path)) == []


def test_r2_case_21_resume_file_of_another_runs_folder_counts_its_best_anew(tiny, finished, tmp_path, monkeypatch):
    """The run goes on in --save-dir; the best it names is one of that folder (it named a file of the other one)."""
    from gluon_asymmnet.training import loop, parse_args, train
    folder = copy_run(finished, tmp_path / 'run')
    before = tree(folder)
    record = folder / NEWEST
    assert json.loads(record.read_text())['best_top1'] == 0.5
    monkeypatch.setattr(loop, 'evaluate', lambda *a, **k: (0.25, 1.0))  # worse than the other folder's best
    out = train(parse_args(args(tiny, tmp_path / 'other', '--resume', str(record), epochs=3)))
    assert [h['epoch'] for h in out['history']] == [0, 1, 2] and out['num_update'] == 9
    assert out['best_params'] == str(tmp_path / 'other' / '0.2500-tiny-asymmnet_small-2-best.params')
    assert os.path.isfile(out['best_params'])
    assert strict_json(tmp_path / 'other' / 'tiny-asymmnet_small-2.json')['best_params'] == \
        '0.2500-tiny-asymmnet_small-2-best.params'
    log = open(out['log_file']).read()
    assert ('warning: --resume %s: the run continues in --save-dir %s, away from its folder %s; its best checkpoint so '
            'far (%s, top-1 0.5000 at epoch 1) stays there, and the best of this folder is counted from epoch 2'
            % (record, tmp_path / 'other', folder, folder / '0.5000-tiny-asymmnet_small-1-best.params')) in log
    assert before == tree(folder)


# -- 14. resume notices changed content -----------------------------------------------------------------------

def test_r2_case_14_resume_notices_a_replaced_image_of_an_image_folder(tmp_path):
    import cv2
    import numpy as np
    from gluon_asymmnet.training import ConfigError, parse_args, train
    rng = np.random.RandomState(0)
    for split, n in (('train', 6), ('val', 2)):
        for c in range(2):
            (tmp_path / 'data' / split / ('c%d' % c)).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(tmp_path / 'data' / split / ('c%d' % c) / ('%d.png' % i)),
                            rng.randint(0, 256, (16, 16, 3)).astype(np.uint8))
    argv = ['--image-folder', str(tmp_path / 'data'), '--dataset', 'mine', '--model', 'asymmnet_small',
            '--width-scale', '0.35', '--input-size', '16', '--batch-size', '4', '--lr', '0.05', '--lr-decay-epoch',
            '10', '-j', '0', '--save-frequency', '1', '--log-interval', '0', '--save-dir', str(tmp_path / 'run')]
    train(parse_args(argv + ['--num-epochs', '1']))
    cv2.imwrite(str(tmp_path / 'data' / 'train' / 'c1' / '3.png'), np.zeros((16, 16, 3), np.uint8))  # same name
    with pytest.raises(ConfigError, match=r"this run differs from the checkpoint's: training data 12 images, content "
                                          r"[0-9a-f]{16} in \S+ -> 12 images, content [0-9a-f]{16} in \S+; "):
        train(parse_args(argv + ['--num-epochs', '2', '--resume']))
    # Copied elsewhere (new mtimes), the same data has the same fingerprint.
    import shutil
    from gluon_asymmnet.training import build_data
    from gluon_asymmnet.training.run_state import data_signature
    shutil.copytree(str(tmp_path / 'data'), str(tmp_path / 'copy'))
    signatures = []
    for where in ('data', 'copy'):
        batches = build_data(parse_args([a.replace(str(tmp_path / 'data'), str(tmp_path / where)) for a in argv]))
        signatures.append({k: dict(v, where=None) for k, v in data_signature(*batches).items()})
        for b in batches:
            b.close()
    assert signatures[0] == signatures[1] and signatures[0]['train']['content']


# -- 1, 2. Ctrl-C and SIGTERM: one line, the last checkpoint kept, nothing half-written left --------------------

class _SignalAt:
    """Training batches that send this process ``signum`` once epoch ``epoch`` has trained ``after`` batches."""

    def __init__(self, batches, epoch, after, signum):
        self.batches, self.at, self.signum, self.epoch = batches, (epoch, after), signum, None

    def __getattr__(self, name):
        return getattr(self.batches, name)

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.batches.set_epoch(epoch)

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if (self.epoch, i) == self.at:
                os.kill(os.getpid(), self.signum)
            yield batch


def test_r2_case_01_ctrl_c_is_one_line_with_the_epoch_batch_checkpoint_and_resume_command(tiny, tmp_path, capsys,
                                                                                          monkeypatch):
    import signal
    from gluon_asymmnet.training import loop, parse_args, train
    build = loop.build_loaders
    monkeypatch.setattr(loop, 'build_loaders', lambda cfg, cluster: (lambda b: (_SignalAt(b[0], 1, 1, signal.SIGINT),
                                                                               b[1]))(build(cfg, cluster)))
    argv = args(tiny, tmp_path / 'run', epochs=3)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever the runner set
    try:
        code, lines = run(argv, capsys)
    finally:
        signal.signal(signal.SIGINT, previous)
    folder = tmp_path / 'run'
    command = 'python train_imagenet.py ' + ' '.join(argv) + ' --resume'
    assert code == 130 and lines == [
        'train_imagenet.py: interrupted by SIGINT at epoch 1, after 1 of its 3 batches; last checkpoint kept: '
        '%s; continue with: %s' % (folder / 'tiny-asymmnet_small-0.params', command)]
    assert all('-0' in n for n in checkpoint_files(folder))
    assert 'interrupted by SIGINT at epoch 1, after 1 of its 3 batches' in (folder / 'train_imagenet.log').read_text()
    monkeypatch.setattr(loop, 'build_loaders', build)
    out = train(parse_args(command.split()[2:]))
    assert [h['epoch'] for h in out['history']] == [0, 1, 2]
    # The command drops what would conflict with --resume.
    from gluon_asymmnet.training.interrupts import resume_command
    assert resume_command(['--lr', '0.1', '--overwrite', '--resume', 'x.params', '--save-dir', 'a b']) == \
        "python train_imagenet.py --lr 0.1 --save-dir 'a b' --resume"
    assert resume_command(['--resume-params', 'p', '--resume-states=s', '--resume-epoch', '3', '--resume']) == \
        'python train_imagenet.py --resume'


def test_r2_case_02_sigterm_while_saving_leaves_no_part_of_the_checkpoint(tiny, tmp_path, capsys, monkeypatch):
    import signal
    import mxnet as mx
    from gluon_asymmnet.training import loop
    scores = iter([0.5, 0.25, 0.75])  # epoch 0 saves its best and periodic checkpoints, epoch 1 its periodic one
    monkeypatch.setattr(loop, 'evaluate', lambda *a, **k: (next(scores), 1.0))
    saved = mx.gluon.Trainer.save_states
    calls = []

    def save_states(trainer, path):
        saved(trainer, path)
        calls.append(path)
        if len(calls) == 3:  # written under its temporary name, not yet renamed
            assert os.path.basename(path).startswith('.tiny-asymmnet_small-1.states.tmp-')
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(mx.gluon.Trainer, 'save_states', save_states)
    folder = tmp_path / 'run'
    code, lines = run(args(tiny, folder, epochs=3), capsys)
    assert code == 143 and len(lines) == 1 and lines[0].startswith(
        'train_imagenet.py: interrupted by SIGTERM at epoch 1, while saving its checkpoint (removed, being '
        'incomplete); last checkpoint kept: %s; continue with: python train_imagenet.py ' %
        (folder / 'tiny-asymmnet_small-0.params')), lines
    kept = ('0.5000-tiny-asymmnet_small-0-best', 'tiny-asymmnet_small-0')
    assert checkpoint_files(folder) == ['%s.%s' % (stem, e) for stem in kept for e in ('json', 'params', 'states')]
    assert [n for n in os.listdir(str(folder)) if n.startswith('.')] == ['.train.lock']  # no temporary file
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the command line's handler is gone


_KILLED_WHILE_SAVING = '''
import json, os, signal, sys
import mxnet as mx
from gluon_asymmnet.training import loop, parse_args, train
saved = mx.gluon.Trainer.save_states
def save_states(trainer, path):
    saved(trainer, path)
    if '-1.states' in path:
        os.kill(os.getpid(), signal.SIGKILL)
mx.gluon.Trainer.save_states = save_states
train(parse_args(json.loads(sys.argv[1])))
'''


def test_r2_case_02_what_a_sigkill_leaves_while_saving_is_removed_by_the_next_start(tiny, tmp_path):
    from faults import python
    from gluon_asymmnet.training import parse_args, train
    folder = tmp_path / 'run'
    killed = python(_KILLED_WHILE_SAVING, json.dumps(args(tiny, folder, '--save-frequency', '1', epochs=3)))
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = sorted(os.listdir(str(folder)))
    orphans = [n for n in left if '-1.' in n]
    assert any('.tmp-' in n for n in orphans) and any(n.endswith('.saving') for n in orphans), left
    out = train(parse_args(args(tiny, folder, '--resume', epochs=3)))
    assert [h['epoch'] for h in out['history']] == [0, 1, 2]
    log = open(out['log_file']).read()
    assert re.search(r'warning: removed what an interrupted run left of a checkpoint it was writing: .*\.tmp-', log)
    assert not [n for n in os.listdir(str(folder)) if '.tmp-' in n or n.endswith('.saving')]


# -- 3. a step that cannot fit in memory is refused before it runs -------------------------------------------

def _eight_gib(ctx):
    return 8 << 30, 'MemAvailable'


def test_r2_case_03_training_and_evaluation_refuse_a_step_that_cannot_fit(tiny, tmp_path, capsys, monkeypatch):
    import mxnet as mx
    from gluon_asymmnet import memory
    from gluon_asymmnet.evaluation import main as eval_main
    monkeypatch.setattr(memory, 'available_bytes', _eight_gib)
    code, lines = run(args(tiny, tmp_path / 'run', '--input-size', '5000', '--batch-size', '4'), capsys)
    assert code == 2 and len(lines) == 1 and re.match(
        r'^train_imagenet.py: error: a training step of asymmnet_small x0.35 at batch 4 and input 5000x5000 needs '
        r'about 38.\d GiB of memory \(activations 21.\d GiB, kept for the backward pass, and their gradients; '
        r'parameters 0.00 GiB\), more than the 8.0 GiB available on cpu\(0\) \(MemAvailable\); lower '
        r'--batch-size or --input-size$', lines[0]), lines
    assert checkpoint_files(tmp_path / 'run') == []
    net = ga.get_model('asymmnet_small', multiplier=0.35, classes=10)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'w.params'))
    with pytest.raises(SystemExit) as exit:
        eval_main(['--model', 'asymmnet_small', '--width-scale', '0.35', '--classes', '10', '--params',
                   str(tmp_path / 'w.params'), '--dataset', 'demo', '--no-progress', '--input-size', '5000'])
    assert exit.value.code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and re.match(
        r'^error: evaluating at batch 32 and input 5000x5000 needs about \d+.\d GiB of memory \(largest activation '
        r'\d+.\d\d GiB; parameters 0.00 GiB\), more than the 8.0 GiB available on cpu\(0\) \(MemAvailable\); lower '
        r'--batch-size or --input-size$', lines[0]), lines


def test_r2_case_03_a_normal_runs_estimate_is_far_below_a_refusal():
    import mxnet as mx
    from gluon_asymmnet import memory
    net = ga.get_model('asymmnet_large', classes=1000)
    need = memory.step_bytes(net, 32, 224, training=True)
    # The released recipe's step on one device (batch 256 per GPU needs a big one): about 20 GiB at batch 32 x 8.
    assert 2 << 30 < need['bytes'] < 6 << 30 and need['params'] == pytest.approx(5.94e6 * 4, rel=0.05)
    assert memory.step_bytes(net, 32, 224, training=False)['bytes'] < need['bytes'] / 10
    free, where = memory.available_bytes(mx.cpu())
    assert free > 0 and where in ('MemAvailable', "the cgroup's limit")


def test_r2_case_02_sigterm_to_the_process_group_with_data_workers(tiny, tmp_path):
    """train_imagenet.py -j 2 and its workers all get SIGTERM (systemd, Slurm): one line, then the script ends as
    the signal ends a process; the pool's clean-up used to wait forever on a lock a killed worker held."""
    import signal
    import subprocess
    import sys
    import time
    from faults import ROOT, _env
    folder = tmp_path / 'run'
    argv = args(tiny, folder, '-j', '2', epochs=200)
    child = subprocess.Popen([sys.executable, os.path.join(ROOT, 'train_imagenet.py')] + argv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,
                             env=dict(_env(), OMP_NUM_THREADS='1'))
    try:
        deadline = time.time() + 240
        while not (folder / 'tiny-asymmnet_small-0.json').exists() and time.time() < deadline and child.poll() is None:
            time.sleep(0.2)
        os.killpg(child.pid, signal.SIGTERM)
        err = child.communicate(timeout=60)[1]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    lines = error_lines(err)
    assert child.returncode == -signal.SIGTERM and len(lines) == 1, err[-3000:]
    assert re.match(r'^train_imagenet.py: interrupted by SIGTERM at (the end of )?epoch \d+.*; last checkpoint kept: '
                    r'\S+\.params; continue with: python train_imagenet.py .* --resume$', lines[0]), lines
    assert not [n for n in os.listdir(str(folder)) if '.tmp-' in n or n.endswith('.saving')]
