"""Training runs end to end on tiny generated RecordIO data: update counting, logs, exact resume, failures.

The shared run (``reference_run``) trains AsymmNet-S x0.35 at 16x16 for three
epochs with mixup, dropout and a cosine schedule with warm-up, 70 training
images in batches of 16, so epochs have 5, 4, 5 batches (the remainder
carries over). Everything else is compared with it.
"""
import math
import os
import re
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from gluon_asymmnet import get_model, load_checkpoint
from gluon_asymmnet.data.pack import pack_arrays
from gluon_asymmnet.training import TrainingDiverged, lr_scheduler, parse_args, train
from gluon_asymmnet.training.cli import main
from gluon_asymmnet.training.schedule import updates_before_epoch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TRAIN, N_VAL, BATCH, EPOCHS = 70, 24, 16, 3


def images(n, seed, size=16):
    """Noise plus a bright quadrant that depends on the class (4 classes)."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % 4
    imgs = rng.randint(0, 80, size=(n, size, size, 3)).astype(np.uint8)
    h = size // 2
    for img, c in zip(imgs, labels):
        img[(c // 2) * h:(c // 2 + 1) * h, (c % 2) * h:(c % 2 + 1) * h] += 150
    return imgs, labels


@pytest.fixture(scope='module')
def tiny_rec(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_rec')
    files = {}
    for split, n, seed in (('train', N_TRAIN, 1), ('val', N_VAL, 2)):
        imgs, labels = images(n, seed)
        out = pack_arrays(imgs, labels, str(root / split))
        files['rec_' + split], files['rec_%s_idx' % split] = out['rec'], out['idx']
    return files


def data_flags(files):
    return ['--rec-train', files['rec_train'], '--rec-train-idx', files['rec_train_idx'],
            '--rec-val', files['rec_val'], '--rec-val-idx', files['rec_val_idx']]


def tiny_args(files, save_dir, *extra):
    return data_flags(files) + [
        '--model', 'asymmnet_small', '--width-scale', '0.35', '--input-size', '16', '--batch-size', str(BATCH),
        '--num-epochs', str(EPOCHS), '--lr', '0.1', '--lr-mode', 'cosine', '--warmup-epochs', '1',
        '--mixup', '--mixup-alpha', '0.4', '--dropout', '0.2', '--no-wd', '--wd', '1e-4',
        '-j', '0', '--save-dir', str(save_dir), '--save-frequency', '1', '--log-interval', '1'] + list(extra)


def params_of(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def assert_same_params(a, b):
    pa, pb = params_of(a), params_of(b)
    assert sorted(pa) == sorted(pb)
    for k in pa:
        assert np.array_equal(pa[k], pb[k]), k


@pytest.fixture(scope='module')
def reference_run(tiny_rec, tmp_path_factory):
    save = tmp_path_factory.mktemp('reference_run')
    return train(parse_args(tiny_args(tiny_rec, save)))


BATCH_LINE = re.compile(r'^Epoch\[(\d+)\] Batch \[(\d+)\]\tSpeed: \d+\.\d{6} samples/sec\t(\w+)=(\d+\.\d{6})'
                        r'\tlr=(\d+\.\d{6})$')
TRAIN_LINE = re.compile(r'^\[Epoch (\d+)\] training: (\w+)=\d+\.\d{6}$')
SPEED_LINE = re.compile(r'^\[Epoch (\d+)\] speed: \d+ samples/sec\ttime cost: \d+\.\d{6}$')
VAL_LINE = re.compile(r'^\[Epoch (\d+)\] validation: top1=(\d\.\d{6}) top5=(\d\.\d{6})$')


def test_update_counter_follows_the_round_batch_formula(reference_run):
    """Every logged rate is the schedule's value at update ceil(e*N/B) + i + 1."""
    opt = parse_args(tiny_args({k: 'x' for k in ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx')}, 'x'))
    schedule = lr_scheduler(opt, N_TRAIN)
    with open(reference_run['log_file']) as f:
        lines = f.read().splitlines()
    batches = [BATCH_LINE.match(l) for l in lines if l.startswith('Epoch[')]
    assert batches and all(batches)
    per_epoch = {}
    for m in batches:
        epoch, i, metric, lr = int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(5))
        assert metric == 'rmse'   # mixup runs report RMSE, as GluonCV does
        u = math.ceil(epoch * N_TRAIN / BATCH) + i + 1
        assert lr == float('%f' % schedule(u)), (epoch, i)
        per_epoch[epoch] = per_epoch.get(epoch, 0) + 1
    assert per_epoch == {0: 5, 1: 4, 2: 5}
    assert [h['num_update'] for h in reference_run['history']] == [5, 9, 14]
    assert reference_run['num_update'] == updates_before_epoch(EPOCHS, N_TRAIN, BATCH) == 14
    # The optimizer itself counted the same updates (its state is in the .states file).
    states = open(os.path.join(reference_run['save_dir'], 'imagenet-asymmnet_small-2.states'), 'rb').read()
    import pickle
    assert pickle.loads(states)[1].num_update == 14
    for regex, count in ((TRAIN_LINE, 3), (SPEED_LINE, 3), (VAL_LINE, 3)):
        assert len([l for l in lines if regex.match(l)]) == count
    vals = [VAL_LINE.match(l) for l in lines if VAL_LINE.match(l)]
    assert [float(m.group(2)) for m in vals] == [float('%f' % h['top1']) for h in reference_run['history']]


def test_checkpoints_named_as_the_authors_did(reference_run):
    files = sorted(os.listdir(reference_run['save_dir']))
    for e in range(EPOCHS):
        for ext in ('params', 'states', 'json'):
            assert 'imagenet-asymmnet_small-%d.%s' % (e, ext) in files
    best = [f for f in files if f.endswith('-best.params')]
    assert best and all(re.match(r'^\d\.\d{4}-imagenet-asymmnet_small-\d-best\.params$', f) for f in best)
    top1, epoch = reference_run['best_top1'], reference_run['best_epoch']
    assert os.path.basename(reference_run['best_params']) == '%.4f-imagenet-asymmnet_small-%d-best.params' % (
        top1, epoch)
    assert not [f for f in files if '.tmp' in f]
    # A best checkpoint loads into a fresh network.
    net = get_model('asymmnet_small', multiplier=0.35, classes=1000)
    load_checkpoint(net, reference_run['best_params'])


def test_resume_latest_is_exact(reference_run, tiny_rec, tmp_path):
    """Stopped after epoch 0, resumed with --resume: the same parameters, bit for bit."""
    first = train(parse_args(tiny_args(tiny_rec, tmp_path)), stop_after=0)
    assert [h['epoch'] for h in first['history']] == [0] and first['num_update'] == 5
    resumed = train(parse_args(tiny_args(tiny_rec, tmp_path, '--resume')))
    assert resumed['num_update'] == 14
    assert [h['epoch'] for h in resumed['history']] == [0, 1, 2]
    for a, b in zip(resumed['history'], reference_run['history']):
        assert (a['top1'], a['top5'], a['num_update']) == (b['top1'], b['top5'], b['num_update'])
    assert resumed['best_epoch'] == reference_run['best_epoch']
    for e in range(EPOCHS):
        name = 'imagenet-asymmnet_small-%d.params' % e
        assert_same_params(str(tmp_path / name), os.path.join(reference_run['save_dir'], name))


def test_gluoncv_resume_flags(reference_run, tiny_rec, tmp_path):
    """--resume-params/--resume-states/--resume-epoch continue exactly too."""
    ref = reference_run['save_dir']
    out = train(parse_args(tiny_args(
        tiny_rec, tmp_path, '--resume-params', os.path.join(ref, 'imagenet-asymmnet_small-1.params'),
        '--resume-states', os.path.join(ref, 'imagenet-asymmnet_small-1.states'), '--resume-epoch', '2')))
    assert out['num_update'] == 14 and [h['epoch'] for h in out['history']] == [2]
    assert_same_params(str(tmp_path / 'imagenet-asymmnet_small-2.params'),
                       os.path.join(ref, 'imagenet-asymmnet_small-2.params'))
    # --resume FILE: a named checkpoint of this trainer, with its recorded epoch, update count and history.
    named = train(parse_args(tiny_args(tiny_rec, tmp_path / 'named', '--resume',
                                       os.path.join(ref, 'imagenet-asymmnet_small-1.params'))))
    assert named['num_update'] == 14 and [h['epoch'] for h in named['history']] == [0, 1, 2]
    assert_same_params(str(tmp_path / 'named' / 'imagenet-asymmnet_small-2.params'),
                       os.path.join(ref, 'imagenet-asymmnet_small-2.params'))


def test_resume_refuses_another_model(reference_run, tiny_rec, tmp_path):
    args = tiny_args(tiny_rec, reference_run['save_dir'], '--resume', '--width-scale', '0.5')
    with pytest.raises(ValueError, match="trained with width_scale=0.35, this run has 0.5"):
        train(parse_args(args))
    with pytest.raises(ValueError, match='no complete checkpoint'):
        train(parse_args(tiny_args(tiny_rec, tmp_path, '--resume')))


def test_script_killed_then_resumed_matches(reference_run, tiny_rec, tmp_path):
    """train_imagenet.py killed (SIGKILL) after its epoch-0 checkpoint, resumed: same result.

    It reads the data with 2 worker processes; the reference run used none.
    """
    args = tiny_args(tiny_rec, tmp_path) + ['-j', '2']
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = [sys.executable, os.path.join(ROOT, 'train_imagenet.py')]
    proc = subprocess.Popen(cmd + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while not os.path.exists(tmp_path / 'imagenet-asymmnet_small-0.json'):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert not os.path.exists(tmp_path / 'imagenet-asymmnet_small-2.json')
    done = subprocess.run(cmd + args + ['--resume'], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'resuming from' in done.stdout
    assert_same_params(str(tmp_path / 'imagenet-asymmnet_small-2.params'),
                       os.path.join(reference_run['save_dir'], 'imagenet-asymmnet_small-2.params'))


class NanAt:
    """Training batches with NaN pixels at one (epoch, batch); everything else passed through."""

    def __init__(self, batches, epoch, batch):
        self.batches, self.at = batches, (epoch, batch)

    def __getattr__(self, name):
        return getattr(self.batches, name)

    def __iter__(self):
        epoch = self.batches.epoch
        for i, (data, label) in enumerate(self.batches):
            if (epoch, i) == self.at:
                data = data.copy()
                data[0] = float('nan')
            yield data, label


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_rec, tmp_path):
    from gluon_asymmnet.training import build_data
    opt = parse_args(tiny_args(tiny_rec, tmp_path, '--log-interval', '0'))
    train_batches, val_batches = build_data(opt)
    with pytest.raises(TrainingDiverged) as err:
        train(opt, loaders=(NanAt(train_batches, 1, 2), val_batches))
    message = str(err.value)
    good = str(tmp_path / 'imagenet-asymmnet_small-0.params')
    # NaN pixels can leave the loss finite (ReLU and clip drop NaN) but never the gradient.
    assert re.search(r'(the loss is nan|the gradient is not finite \(loss [^)]*\)) at epoch 1, batch 2 \(update 8,',
                     message), message
    assert good in message
    assert not [f for f in os.listdir(tmp_path) if '-1.' in f or '-1-best' in f or '.tmp' in f]
    net = get_model('asymmnet_small', multiplier=0.35, classes=1000)
    load_checkpoint(net, good)
    assert all(np.isfinite(p.data().asnumpy()).all() for p in net.collect_params().values())


def test_huge_learning_rate_diverges_with_a_clear_message(tiny_rec, tmp_path):
    opt = parse_args(tiny_args(tiny_rec, tmp_path, '--lr', '1e20', '--warmup-epochs', '0', '--log-interval', '0'))
    with pytest.raises(TrainingDiverged, match=r'(the loss is (nan|inf)|the gradient is not finite .*) at epoch 0, '
                                               r'batch [1-4] .*'
                                               r'Last good checkpoint: none written yet'):
        train(opt)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(('.params', '.states', '.json'))]


def test_missing_data_file_is_a_clean_cli_error(tiny_rec, tmp_path, capsys):
    files = dict(tiny_rec, rec_val=str(tmp_path / 'nowhere.rec'))
    code = main(tiny_args(files, tmp_path))
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / 'nowhere.rec') in err and 'Traceback' not in err
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.params')]


def test_corrupt_record_is_skipped_and_counted(tmp_path):
    imgs, labels = images(40, 3)
    good = pack_arrays(imgs, labels, str(tmp_path / 'train'))
    # Rewrite record 7 with a payload that is not an image.
    reader = mx.recordio.MXIndexedRecordIO(good['idx'], good['rec'], 'r')
    records = [reader.read_idx(k) for k in reader.keys]
    reader.close()
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'bad.idx'), str(tmp_path / 'bad.rec'), 'w')
    for k, rec in enumerate(records):
        if k == 7:
            header, _ = mx.recordio.unpack(rec)
            rec = mx.recordio.pack(header, b'\xff\xd8 not a JPEG')
        writer.write_idx(k, rec)
    writer.close()
    files = dict(rec_train=str(tmp_path / 'bad.rec'), rec_train_idx=str(tmp_path / 'bad.idx'),
                 rec_val=good['rec'], rec_val_idx=good['idx'])
    with pytest.warns(UserWarning, match='corrupt'):
        out = train(parse_args(tiny_args(files, tmp_path / 'run', '--num-epochs', '2', '--warmup-epochs', '0',
                                         '--log-interval', '0')))
    assert out['skipped'] == 2 and [h['skipped'] for h in out['history']] == [1, 1]
    log = open(out['log_file']).read()
    assert '[Epoch 0] skipped 1 corrupt record(s)' in log and 'skipped 2 corrupt record(s) in total' in log


def test_tensorboard_scalars_and_curve_plot(reference_run):
    from tensorboardX.proto import event_pb2
    save = reference_run['save_dir']
    events = [f for f in os.listdir(save) if f.startswith('events.out.tfevents')]
    assert len(events) == 1
    scalars = {}
    with open(os.path.join(save, events[0]), 'rb') as f:
        data = f.read()
    pos = 0
    while pos < len(data):   # TFRecord framing: length, crc, payload, crc
        n = int.from_bytes(data[pos:pos + 8], 'little')
        event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
        pos += 16 + n
        for v in event.summary.value:
            scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
    assert set(scalars) == {'learning_rate', 'train_rmse', 'train_loss', 'validation_acc', 'validation_acc_top5'}
    assert [s for s, _ in scalars['validation_acc']] == [0, 1, 2]
    assert [v for _, v in scalars['validation_acc']] == pytest.approx([h['top1'] for h in reference_run['history']])
    from PIL import Image
    with Image.open(reference_run['plot']) as img:
        assert img.format == 'PNG' and img.size == (700, 450)
