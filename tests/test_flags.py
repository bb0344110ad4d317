"""Every flag of GluonCV 0.11's train_imagenet.py and of the authors' args_helper.py is implemented or refused
with a one-line reason (docs/flags.md lists each), and the authors' README command runs as it is."""
import os
import re
import shlex

import numpy as np
import pytest

from gluon_asymmnet import get_model_list
from gluon_asymmnet.data.pack import pack_arrays
from gluon_asymmnet.training import ConfigError, parse_args
from gluon_asymmnet.training.cli import main
from gluon_asymmnet.training.compat import GLUONCV_REC
from gluon_asymmnet.training.run_state import run_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, 'docs', 'flags.md')

# The flags of the two argparse parsers, in their order (reference lists, not code).
GLUONCV = ['--data-backend', '--data-dir', '--rec-train', '--rec-train-idx', '--rec-val', '--rec-val-idx', '--use-rec',
           '--batch-size', '--dtype', '--num-gpus', '-j', '--num-data-workers', '--num-epochs', '--lr', '--momentum',
           '--wd', '--lr-mode', '--lr-decay', '--lr-decay-period', '--lr-decay-epoch', '--warmup-lr', '--warmup-epochs',
           '--last-gamma', '--mode', '--model', '--input-size', '--crop-ratio', '--use-pretrained', '--use_se',
           '--mixup', '--mixup-alpha', '--mixup-off-epoch', '--label-smoothing', '--no-wd', '--teacher',
           '--temperature', '--hard-weight', '--batch-norm', '--save-frequency', '--save-dir', '--resume-epoch',
           '--resume-params', '--resume-states', '--log-interval', '--logging-file', '--use-gn', '--rgb-mean',
           '--rgb-std', '--num-training-samples']
AUTHORS = ['--rec-train', '--rec-train-idx', '--rec-val', '--rec-val-idx', '--batch-size', '--dtype', '--num-gpus', '-j',
           '--num-data-workers', '--num-epochs', '--lr', '--momentum', '--wd', '--lr-mode', '--lr-decay',
           '--lr-decay-period', '--lr-decay-epoch', '--warmup-lr', '--warmup-epochs', '--last-gamma', '--mode',
           '--model', '--input-size', '--crop-ratio', '--use-pretrained', '--use_se', '--mixup', '--mixup-alpha',
           '--mixup-off-epoch', '--label-smoothing', '--no-wd', '--temperature', '--hard-weight', '--batch-norm',
           '--save-frequency', '--save-dir', '--resume-epoch', '--resume-params', '--resume-states', '--log-interval',
           '--logging-file', '--use-gn', '--dataset', '--tag-name', '--width-scale', '--dry-run', '--dropout',
           '--doshuffle', '--shuffle-group', '--asymmrate']

# A value each flag is tried with (none for switches), as published command lines give them.
VALUES = {'--data-backend': 'mxnet', '--data-dir': '/data/imagenet', '--rec-train': 't.rec', '--rec-train-idx': 't.idx',
          '--rec-val': 'v.rec', '--rec-val-idx': 'v.idx', '--batch-size': '64', '--dtype': 'float32',
          '--num-gpus': '0', '-j': '2', '--num-data-workers': '2', '--num-epochs': '90', '--lr': '0.4',
          '--momentum': '0.9', '--wd': '1e-4', '--lr-mode': 'constant', '--lr-decay': '0.1', '--lr-decay-period': '30',
          '--lr-decay-epoch': '30,60', '--warmup-lr': '0.01', '--warmup-epochs': '5', '--mode': 'symbolic',
          '--model': 'mobilenetv3_small', '--input-size': '192', '--crop-ratio': '0.9', '--mixup-alpha': '0.4',
          '--mixup-off-epoch': '5', '--teacher': 'mobilenetv3_large', '--temperature': '4', '--hard-weight': '0.6',
          '--save-frequency': '5', '--save-dir': 'out', '--resume-epoch': '2', '--resume-params': 'x.params',
          '--resume-states': 'x.states', '--log-interval': '100', '--logging-file': 'log.txt',
          '--rgb-mean': '120,115,100', '--rgb-std': '60,60,60', '--num-training-samples': '1281167',
          '--dataset': 'imagenet', '--tag-name': 'baseline', '--width-scale': '0.75', '--dry-run': '5',
          '--dropout': '0.1', '--shuffle-group': '2', '--asymmrate': '2'}
# Flags that need company to mean anything.
COMPANY = {'--resume-states': ['--resume-params', 'x.params'], '--hard-weight': ['--teacher', 'mobilenetv3_large'],
           '--temperature': ['--teacher', 'mobilenetv3_large'], '--mixup-off-epoch': ['--mixup'],
           '--doshuffle': ['--model', 'asymmnet_small'], '--asymmrate': ['--model', 'asymmnet_large']}
REFUSED = {('--use-gn',): 'GroupNorm in place of BatchNorm is not implemented',
           ('--data-backend', 'dali-gpu'): 'NVIDIA DALI is not supported',
           ('--data-backend', 'dali-cpu'): 'NVIDIA DALI is not supported'}


def documented_flags():
    """The flags in the first column of docs/flags.md's GluonCV and authors' tables."""
    with open(DOC) as f:
        text = f.read()
    start = text.index('## GluonCV 0.11')
    end = text.index('## Flags of this package')
    flags = set()
    for line in text[start:end].splitlines():
        if line.startswith('| `'):
            flags.update(re.findall(r'`(-{1,2}[\w-]+)`', line.split('|')[1]))
    return flags


def test_every_flag_of_both_scripts_is_in_the_table():
    assert documented_flags() == set(GLUONCV) | set(AUTHORS)


def test_the_model_row_lists_every_model():
    with open(DOC) as f:
        row = [line for line in f if line.startswith('| `--model` | `')][0]
    assert re.findall(r'`(\w+)`', row.split('|')[2]) == get_model_list()


@pytest.mark.parametrize('flag', sorted(set(GLUONCV) | set(AUTHORS)))
def test_every_flag_is_implemented_or_refused_with_a_reason(flag, capsys):
    argv = [flag] + ([VALUES[flag]] if flag in VALUES else []) + COMPANY.get(flag, [])
    if flag.startswith('--rec-'):
        argv = [a for f in ('--rec-train', '--rec-train-idx', '--rec-val', '--rec-val-idx') for a in (f, VALUES[f])]
    elif flag in ('--dataset', '--num-training-samples'):
        argv += ['--data-dir', '/data/imagenet']
    refused = [reason for key, reason in REFUSED.items() if tuple(argv[:len(key)]) == key]
    if refused:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and flag in err and refused[0] in err, err
    else:
        parse_args(argv)


@pytest.mark.parametrize('argv, message', [(list(k), v) for k, v in REFUSED.items()])
def test_refusals_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('train_imagenet.py: error: %s' % argv[0]) and message in err and err.count('\n') == 1


def test_meanings():
    """A few flags whose meaning is easy to get wrong, checked value by value."""
    gluoncv_rec = parse_args(['--use-rec'])
    assert gluoncv_rec.rec_train == os.path.expanduser(GLUONCV_REC['rec_train']) and gluoncv_rec.classes == 1000
    assert parse_args(['--use-rec', '--rec-val', 'v.rec']).rec_val == 'v.rec'
    with pytest.raises(ConfigError, match='--use-rec reads RecordIO files; drop --data-dir'):
        parse_args(['--use-rec', '--data-dir', 'x'])
    assert parse_args(['--use-pretrained']).pretrained == parse_args(['--pretrained']).pretrained == 'store'
    assert parse_args(['--doshuffle', '--model', 'asymmnet_small']).shuffle_group == 2
    assert parse_args(['--doshuffle', '--shuffle-group', '4']).shuffle_group == 4
    with pytest.raises(ConfigError, match='--doshuffle shuffles the reused features'):
        parse_args(['--doshuffle', '--model', 'mobilenetv3_small'])
    assert parse_args(['--last-gamma', '--no-last-gamma']).last_gamma is False
    assert parse_args(['--no-last-gamma', '--last-gamma']).last_gamma is True
    cfg = parse_args(['--rgb-mean', '1,2,3', '--rgb-std', '4,5,6', '--warmup-lr', '0.05', '--lr', '0.1'])
    assert (cfg.rgb_mean, cfg.rgb_std, cfg.warmup_lr) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0), 0.05)
    with pytest.raises(ConfigError, match='--rgb-std must be 3 comma-separated numbers'):
        parse_args(['--rgb-std', '1,2'])
    # A published command's --use_se / --batch-norm: accepted, no effect, a note says so.
    assert parse_args(['--use_se', '--batch-norm']) == parse_args([])


def authors_command():
    """The authors' README command as docs/flags.md gives it, as an argument list."""
    with open(DOC) as f:
        text = f.read()
    block = text[text.index('```\npython train_imagenet.py') + 4:]
    block = block[:block.index('```')]
    args = shlex.split(re.sub(r'\\\n', ' ', block))
    assert args[:2] == ['python', 'train_imagenet.py']
    return args[2:]


def with_data(argv, files):
    """``argv`` with the four RecordIO paths replaced."""
    out = list(argv)
    for flag, path in files.items():
        out[out.index(flag) + 1] = path
    return out


def test_authors_command_parses_as_is():
    cfg = parse_args(authors_command())
    assert (cfg.model, cfg.dataset, cfg.classes, cfg.width_scale, cfg.dropout, cfg.last_gamma) == (
        'asymmnet_large', 'imagenet', 1000, 1.0, 0.1, True)
    assert (cfg.device_batch, cfg.lr, cfg.lr_mode, cfg.num_epochs, cfg.warmup_epochs, cfg.wd, cfg.no_wd) == (
        256 * 8, 2.6, 'cosine', 360, 5, 3e-5, True)
    assert (cfg.dtype, cfg.num_workers, cfg.tag_name, cfg.log_interval, cfg.mode) == (
        'float16', 48, '1.0x-fp16-8gpu-lr2.6-360e-drop0.1', 100, 'hybrid')
    # What their train.py actually ran: --last-gamma never reached their network.
    assert parse_args(authors_command() + ['--no-last-gamma']).last_gamma is False


def test_authors_command_one_epoch_on_cpu(tmp_path, capsys):
    """Data paths changed, --num-gpus 0 --dtype float32, one epoch; then small sizes so that CI can run it."""
    rng = np.random.RandomState(0)
    files = {}
    for split, n in (('train', 16), ('val', 8)):
        out = pack_arrays(rng.randint(0, 255, (n, 24, 24, 3)).astype(np.uint8), np.arange(n) % 7,
                          str(tmp_path / split))
        files['--rec-%s' % split], files['--rec-%s-idx' % split] = out['rec'], out['idx']
    argv = with_data(authors_command(), files) + ['--num-gpus', '0', '--dtype', 'float32', '--num-epochs', '1']
    smoke = argv + ['--batch-size', '8', '--input-size', '32', '-j', '0', '--save-dir', str(tmp_path / 'runs')]
    assert main(smoke) == 0
    out = capsys.readouterr().out
    assert re.search(r'warning: --warmup-epochs 5 is not shorter than the run \(--num-epochs 1\)', out)
    assert '[Epoch 0] validation: top1=' in out
    runs = os.listdir(str(tmp_path / 'runs' / 'imagenet'))
    assert len(runs) == 1 and re.fullmatch(r'asymmnet_large_1\.0x-fp16-8gpu-lr2\.6-360e-drop0\.1_\d{4}-\d{6}',
                                           runs[0]), runs
    run = tmp_path / 'runs' / 'imagenet' / runs[0]
    assert (run / 'train_imagenet.log').is_file() and list(run.glob('imagenet-asymmnet_large-0.params'))


def test_tag_name_run_folders(tmp_path):
    """A new folder per launch, named as the authors' train.py names it; --resume continues the newest one."""
    first = run_folder(str(tmp_path), 'imagenet', 'asymmnet_large', 'x1', now=0)
    assert first == os.path.join(str(tmp_path), 'imagenet', 'asymmnet_large_x1_' + __import__('time').strftime(
        '%m%d-%H%M%S', __import__('time').localtime(0)))
    assert run_folder(str(tmp_path), 'imagenet', 'asymmnet_large', None) == str(tmp_path)
    assert run_folder(str(tmp_path), 'imagenet', 'asymmnet_large', 'x1', resume='latest', now=60) != first
    os.makedirs(first)
    for ext in ('params', 'states'):
        open(os.path.join(first, 'imagenet-asymmnet_large-0.' + ext), 'w').close()
    with open(os.path.join(first, 'imagenet-asymmnet_large-0.json'), 'w') as f:
        f.write('{"epoch": 0, "params": "imagenet-asymmnet_large-0.params", '
                '"states": "imagenet-asymmnet_large-0.states"}')
    assert run_folder(str(tmp_path), 'imagenet', 'asymmnet_large', 'x1', resume='latest', now=60) == first
    assert run_folder(str(tmp_path), 'imagenet', 'asymmnet_large', 'x1', now=60) != first
