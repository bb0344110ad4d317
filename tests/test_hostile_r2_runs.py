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
