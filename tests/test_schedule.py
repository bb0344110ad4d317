"""The learning-rate schedule train_imagenet.py builds, against the released run's printed rates."""
import hashlib
import math
import os
import re
import shlex

import pytest

from gluon_asymmnet.training import ConfigError, config_argv, lr_scheduler, parse_args, reference_curve, train_recipe
from gluon_asymmnet.training.plot import REFERENCE_CURVE
from gluon_asymmnet.training.schedule import batches_in_epoch, updates_before_epoch

IMAGENET = 1281167
REC = ['--rec-train', 'train.rec', '--rec-train-idx', 'train.idx', '--rec-val', 'val.rec', '--rec-val-idx', 'val.idx']
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def released_command():
    """The reproduction command documented in train_imagenet.py, as an argument list."""
    with open(os.path.join(ROOT, 'train_imagenet.py')) as f:
        doc = f.read()
    block = doc[doc.index('    python train_imagenet.py'):]
    block = block[:block.index('\n\n')]
    args = shlex.split(re.sub(r'\\+\n', ' ', block))   # join the continued lines
    assert args[:2] == ['python', 'train_imagenet.py']
    return args[2:]


def test_documented_command_is_the_released_recipe():
    """docs/design.md section 5, flag by flag; the same as recipe 'released' with the documented data."""
    opt = parse_args(released_command())
    assert (opt.model, opt.width_scale, opt.asymmrate, opt.shuffle_group, opt.dropout) == (
        'asymmnet_large', 1.0, 1, 0, 0.2)
    assert (opt.dataset, opt.classes, opt.input_size, opt.crop_ratio, opt.dtype) == (
        'imagenet', 1000, 224, 0.875, 'float32')
    assert (opt.device_batch, opt.num_epochs, opt.lr, opt.lr_mode, opt.warmup_epochs) == (
        2048, 360, 2.6, 'cosine', 5)
    assert (opt.momentum, opt.wd, opt.no_wd, opt.label_smoothing, opt.mixup, opt.last_gamma, opt.teacher) == (
        0.9, 3e-5, True, True, False, False, None)
    assert opt.rec_train.endswith('train.rec') and opt.rec_val_idx.endswith('val.idx')
    data = {k: getattr(opt, k) for k in ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx')}
    assert opt == train_recipe('released', **data) == parse_args(['--recipe', 'released'] + config_argv(data))


def test_released_schedule_reproduces_every_printed_rate():
    opt = parse_args(released_command())
    assert opt.device_batch == 2048
    schedule = lr_scheduler(opt, IMAGENET)
    curve = reference_curve()
    assert curve['epoch'] == list(range(360))
    worst = 0.0
    for epoch, printed in zip(curve['epoch'], curve['lr_at_batch_599']):
        # The rate printed after the 600th update of epoch e (docs/design.md section 5).
        u = math.ceil(epoch * IMAGENET / 2048) + 600
        assert u == updates_before_epoch(epoch, IMAGENET, 2048) + 600
        worst = max(worst, abs(schedule(u) - printed))
    assert worst < 1e-6, worst
    # Warm-up from 0 to 2.6 over 5 * 625 updates, then cosine to 0.
    assert schedule(0) == 0 and schedule(5 * 625) == pytest.approx(2.6)
    assert schedule(360 * 625) == pytest.approx(0, abs=1e-9)


# sha256 of the epoch, val_top1, val_top5 and lr_at_batch_599 columns of the authors' released
# AsymmNet-L 1.0 log (one "e,top1,top5,lr" line per epoch, as printed there; docs/design.md section 4).
RELEASED_CURVE_SHA256 = 'ae427d2bc89fd0b7a2337aa462b46b8fe8d1c45328722be89dd288a7ee9022f5'


def test_packaged_curve_is_the_released_log():
    with open(REFERENCE_CURVE) as f:
        lines = [line for line in f if not line.startswith('#')]
    assert lines[0].strip() == 'epoch,val_top1,val_top5,lr_at_batch_599'
    assert hashlib.sha256(''.join(lines[1:]).encode()).hexdigest() == RELEASED_CURVE_SHA256
    curve = reference_curve()
    assert len(curve['epoch']) == 360 and curve['val_top1'][358] == pytest.approx(0.754232)


def test_round_batch_epochs_alternate_625_and_626():
    counts = [batches_in_epoch(e, IMAGENET, 2048) for e in range(360)]
    assert set(counts) == {625, 626}
    assert sum(counts) == updates_before_epoch(360, IMAGENET, 2048) == math.ceil(360 * IMAGENET / 2048)


def test_step_schedule_decays_at_epochs_counted_from_the_start():
    opt = parse_args(REC + ['--batch-size', '10', '--num-epochs', '6', '--lr', '0.4', '--lr-mode', 'step',
                            '--lr-decay-epoch', '3,5', '--lr-decay', '0.5', '--warmup-epochs', '1'])
    s = lr_scheduler(opt, 100)   # 10 iterations per epoch
    assert s(4.5) == pytest.approx(0.2)    # half-way through warm-up (GluonCV spans niters - 1)
    assert s(15) == pytest.approx(0.4)
    assert s(29) == pytest.approx(0.4) and s(30) == pytest.approx(0.2)    # epoch 3
    assert s(49) == pytest.approx(0.2) and s(50) == pytest.approx(0.1)    # epoch 5
    period = parse_args(REC + ['--batch-size', '10', '--num-epochs', '6', '--lr-mode', 'step',
                               '--lr-decay-period', '2'])
    p = lr_scheduler(period, 100)
    assert [round(p(u), 6) for u in (19, 20, 40)] == [0.1, 0.01, 0.001]


@pytest.mark.parametrize('mode, half', [('linear', 0.5), ('poly', 0.25), ('cosine', 0.5)])
def test_modes_without_warmup(mode, half):
    opt = parse_args(REC + ['--batch-size', '10', '--num-epochs', '2', '--lr', '1', '--lr-mode', mode])
    s = lr_scheduler(opt, 105)   # 10 iterations per epoch, 20 in all
    assert s(0) == pytest.approx(1.0)
    assert s(9.5) == pytest.approx(half, abs=1e-9)      # GluonCV spans niters - 1 = 19 updates
    assert s(19) == pytest.approx(0, abs=1e-12) and s(25) == pytest.approx(0, abs=1e-12)


def test_distributed_schedule_counts_the_global_batch():
    opt = parse_args(REC + ['--batch-size', '256', '--num-epochs', '10', '--lr-mode', 'cosine'])
    assert lr_scheduler(opt, IMAGENET, num_workers=8).schedulers[1].niters == 10 * 625


@pytest.mark.parametrize('args, message', [
    (['--dtype', 'float16'], '--dtype float16 needs GPUs'),
    (['--rec-train', 'a.rec'], 'missing --rec-train-idx, --rec-val, --rec-val-idx'),
    (REC + ['--data-dir', 'x'], 'give one data source, not the RecordIO flags and --data-dir'),
    (['--dataset', 'imagenet'], '--dataset imagenet needs data'),
    (['--lr-decay-epoch', '3,x'], '--lr-decay-epoch must be comma-separated integers'),
    (['--resume', '--resume-epoch', '2', '--num-epochs', '4'], '--resume replaces'),
    (['--teacher-params', 't.params'], 'without --teacher'),
    (['--num-epochs', '50', '--warmup-epochs', '5', '--lr-decay-epoch', '3,40'], 'not all after the 5 warm-up'),
])
def test_bad_option_combinations_are_named(args, message):
    with pytest.raises(ConfigError, match=message.replace('.', r'\.')):
        parse_args(args)


def test_too_few_images_for_one_batch():
    with pytest.raises(ConfigError, match='50 training images are fewer than one global batch of 64'):
        lr_scheduler(parse_args(REC + ['--batch-size', '64']), 50)


@pytest.mark.parametrize('mode', ['cosine', 'poly', 'linear', 'step'])
def test_dist_async_server_schedule_equals_gluoncv_after_warmup(mode):
    opt = parse_args(REC + ['--batch-size', '10', '--num-epochs', '8', '--lr', '0.4', '--lr-mode', mode,
                            '--warmup-epochs', '2', '--lr-decay-epoch', '4,6', '--lr-decay', '0.3'])
    gluoncv, native = lr_scheduler(opt, 105), lr_scheduler(opt, 105, on_servers=True)   # 10 updates per epoch
    assert type(native).__module__ == 'mxnet.lr_scheduler'   # what a parameter server can unpickle
    rates = [(gluoncv(u), native(u)) for u in range(0, 100)]   # in order: MXNet's step scheduler is stateful
    assert max(abs(a - b) for a, b in rates[:20]) <= 0.4 / 20 + 1e-12
    assert max(abs(a - b) for a, b in rates[20:]) < 1e-12


@pytest.mark.parametrize('mode', ['cosine', 'poly', 'linear', 'step'])
def test_phases_of_one_update_run_at_their_start_rate(mode):
    """Few images, one update per epoch: GluonCV's schedulers divide by zero there; the rate is the phase's start."""
    from gluon_asymmnet.training.schedule import build_lr_scheduler
    s = build_lr_scheduler(0.1, mode, 2, 1, warmup_epochs=1, warmup_lr=0.01, decay_epochs=(5,))
    assert [s(u) for u in range(3)] == [0.01, 0.1, 0.1]
    assert build_lr_scheduler(0.1, mode, 1, 1, decay_epochs=(5,))(0) == 0.1
