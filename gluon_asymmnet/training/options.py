"""Command-line options of ``train_imagenet.py``: GluonCV's names and meanings plus the authors'.

GluonCV's ``scripts/classification/imagenet/train_imagenet.py`` defines the
data, optimisation and checkpoint flags; the AsymmNet authors added
``--width-scale``, ``--asymmrate``, ``--shuffle-group``, ``--dropout`` and
``--dataset``. Two differences, both on purpose: with no data flag at all the
run uses the bundled digits dataset (so the script runs out of the box), and
``--resume`` (no value) resumes from the newest checkpoint in ``--save-dir``.
"""
import argparse
import math

from ..data.digits import DIGITS_IMAGE_SIZE
from ..model_zoo import get_model_list

__all__ = ['ConfigError', 'DATASETS', 'KVSTORES', 'build_parser', 'parse_args', 'resolve',
           'decay_epochs', 'use_demo_data']


class ConfigError(ValueError):
    """A combination of training options that cannot work; the message names the flags."""


# Dataset name -> number of classes. The schedule counts the training images
# the data actually holds (1,281,167 for ImageNet-1k, as GluonCV hard-codes).
DATASETS = {'imagenet': 1000, 'imagenet200': 200}
DIGITS_CLASSES = 10

KVSTORES = ('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async')

_DATA_FLAGS = ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'data_dir')


def build_parser():
    """The argument parser of ``train_imagenet.py``.

    Returns
    -------
    argparse.ArgumentParser
    """
    p = argparse.ArgumentParser(
        description='Train AsymmNet / MobileNetV3 on ImageNet (GluonCV-style). '
                    'Without data flags it trains on the bundled handwritten-digits dataset.')
    data = p.add_argument_group('data')
    data.add_argument('--rec-train', type=str, default=None, help='training RecordIO file (.rec)')
    data.add_argument('--rec-train-idx', type=str, default=None, help='index of the training RecordIO file (.idx)')
    data.add_argument('--rec-val', type=str, default=None, help='validation RecordIO file (.rec)')
    data.add_argument('--rec-val-idx', type=str, default=None, help='index of the validation RecordIO file (.idx)')
    data.add_argument('--data-dir', type=str, default=None,
                      help='ImageNet folders: <data-dir>/train/<synset>/*.JPEG and <data-dir>/val/<synset>/*.JPEG')
    data.add_argument('--dataset', type=str, default=None, choices=sorted(DATASETS),
                      help='dataset the data flags point at (number of classes; default imagenet)')
    data.add_argument('--input-size', type=int, default=None,
                      help='size of the input images (default 224; 32 on the bundled digits)')
    data.add_argument('--crop-ratio', type=float, default=0.875,
                      help='validation centre-crop ratio: resize to ceil(input-size / crop-ratio) first')
    data.add_argument('-j', '--num-data-workers', dest='num_workers', type=int, default=4,
                      help='number of preprocessing workers (0: in the main process)')

    model = p.add_argument_group('model')
    model.add_argument('--model', type=str, default='asymmnet_large', choices=get_model_list(),
                       help='network to train (default asymmnet_large)')
    model.add_argument('--width-scale', type=float, default=1.0, help='width multiplier (default 1.0)')
    model.add_argument('--asymmrate', type=int, default=1,
                       help='AsymmNet feature-reuse rate (default 1; ignored by mobilenetv3_*)')
    model.add_argument('--shuffle-group', type=int, default=0,
                       help='channel-shuffle groups after feature reuse (default 0: off)')
    model.add_argument('--dropout', type=float, default=0.2, help='dropout before the classifier (default 0.2)')
    model.add_argument('--last-gamma', action='store_true',
                       help='zero-initialise the last BatchNorm gamma of every residual bottleneck')
    model.add_argument('--mode', type=str, default='hybrid', choices=('hybrid', 'imperative'),
                       help='hybrid (static graph, default) or imperative')
    model.add_argument('--dtype', type=str, default='float32', choices=('float32', 'float16'),
                       help='training data type; float16 trains with multi-precision SGD on GPUs only')

    optim = p.add_argument_group('optimisation')
    optim.add_argument('--batch-size', type=int, default=32, help='batch size per device (default 32)')
    optim.add_argument('--num-gpus', type=int, default=0, help='number of GPUs (default 0: CPU)')
    optim.add_argument('--num-epochs', type=int, default=3, help='number of training epochs')
    optim.add_argument('--lr', type=float, default=0.1, help='peak learning rate (default 0.1)')
    optim.add_argument('--lr-mode', type=str, default='step', choices=('step', 'poly', 'cosine', 'linear'),
                       help='learning-rate schedule after warm-up (default step)')
    optim.add_argument('--lr-decay', type=float, default=0.1, help='step decay factor (default 0.1)')
    optim.add_argument('--lr-decay-period', type=int, default=0,
                       help='step decay every this many epochs (default 0: use --lr-decay-epoch)')
    optim.add_argument('--lr-decay-epoch', type=str, default='40,60',
                       help='comma-separated epochs at which the step schedule decays (default 40,60)')
    optim.add_argument('--warmup-epochs', type=int, default=0,
                       help='epochs of linear warm-up from 0 to --lr (default 0)')
    optim.add_argument('--momentum', type=float, default=0.9, help='Nesterov momentum (default 0.9)')
    optim.add_argument('--wd', type=float, default=0.0001, help='weight decay (default 0.0001)')
    optim.add_argument('--no-wd', action='store_true',
                       help='no weight decay on BatchNorm gamma/beta and biases')
    optim.add_argument('--label-smoothing', action='store_true', help='label smoothing with eta 0.1')
    optim.add_argument('--mixup', action='store_true', help='mixup training')
    optim.add_argument('--mixup-alpha', type=float, default=0.2, help='mixup Beta(alpha, alpha) (default 0.2)')
    optim.add_argument('--mixup-off-epoch', type=int, default=0,
                       help='turn mixup off for the last this many epochs (default 0)')
    optim.add_argument('--teacher', type=str, default=None,
                       help='distil from this teacher (a model of this package or of GluonCV)')
    optim.add_argument('--teacher-params', type=str, default=None,
                       help="teacher weights; default: GluonCV's pretrained file, if it is on this machine")
    optim.add_argument('--temperature', type=float, default=20, help='distillation temperature (default 20)')
    optim.add_argument('--hard-weight', type=float, default=0.5,
                       help='weight of the loss on the true label in distillation (default 0.5)')
    optim.add_argument('--seed', type=int, default=0,
                       help='seed of initialisation, data order, augmentation, dropout and mixup (default 0)')
    optim.add_argument('--kvstore', type=str, default='device', choices=KVSTORES,
                       help='gradient aggregation: local/device on one machine, dist_* across machines')

    out = p.add_argument_group('checkpoints and logs')
    out.add_argument('--save-dir', type=str, default='params',
                     help='checkpoints, log file, TensorBoard scalars and the curve plot go here')
    out.add_argument('--save-frequency', type=int, default=10,
                     help='save a checkpoint every this many epochs (0: only best and last)')
    out.add_argument('--resume', nargs='?', const='latest', default=None, metavar='PARAMS',
                     help='resume from the newest checkpoint in --save-dir (no value) or from this .params file')
    out.add_argument('--resume-params', type=str, default='', help='parameters to start from (GluonCV)')
    out.add_argument('--resume-states', type=str, default='', help='optimizer states to start from (GluonCV)')
    out.add_argument('--resume-epoch', type=int, default=0, help='epoch to start from (GluonCV)')
    out.add_argument('--log-interval', type=int, default=50, help='log every this many batches (0: never)')
    out.add_argument('--logging-file', type=str, default='train_imagenet.log',
                     help='log file; a relative name is placed in --save-dir')
    return p


def parse_args(argv=None):
    """Parse and check ``train_imagenet.py`` arguments.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        Checked options, see :func:`resolve`.
    """
    return resolve(build_parser().parse_args(argv))


def use_demo_data(opt):
    """True when no data flag was given: the run uses the bundled digits dataset."""
    return all(getattr(opt, k) is None for k in _DATA_FLAGS)


def decay_epochs(opt):
    """Epochs (counted from the start of training) at which the step schedule decays."""
    if opt.lr_decay_period > 0:
        return list(range(opt.lr_decay_period, opt.num_epochs, opt.lr_decay_period))
    try:
        return [int(e) for e in opt.lr_decay_epoch.split(',') if e.strip()]
    except ValueError:
        raise ConfigError('--lr-decay-epoch must be comma-separated integers, got %r' % opt.lr_decay_epoch)


def resolve(opt):
    """Check option combinations and fill in derived values, in place.

    Sets ``opt.dataset`` (``'digits'`` for the bundled data), ``opt.classes``
    and, when not given, ``opt.input_size``.

    Raises
    ------
    ConfigError
        Naming the offending flags and values.
    """
    if use_demo_data(opt):
        if opt.dataset is not None:
            raise ConfigError('--dataset %s needs data: give --rec-train/--rec-train-idx/--rec-val/'
                              '--rec-val-idx or --data-dir (without data flags the bundled digits '
                              'dataset is used)' % opt.dataset)
        opt.dataset = 'digits'
        opt.classes = DIGITS_CLASSES
        opt.input_size = opt.input_size or DIGITS_IMAGE_SIZE
    else:
        rec = [k for k in _DATA_FLAGS[:4] if getattr(opt, k) is not None]
        if rec and opt.data_dir is not None:
            raise ConfigError('give either the RecordIO flags or --data-dir, not both (got --data-dir %s and %s)'
                              % (opt.data_dir, ', '.join('--' + k.replace('_', '-') for k in rec)))
        if rec and len(rec) != 4:
            missing = [k for k in _DATA_FLAGS[:4] if getattr(opt, k) is None]
            raise ConfigError('RecordIO training needs all four files; missing %s'
                              % ', '.join('--' + k.replace('_', '-') for k in missing))
        opt.dataset = opt.dataset or 'imagenet'
        opt.classes = DATASETS[opt.dataset]
        opt.input_size = opt.input_size or 224
    for flag, value, low in (('--batch-size', opt.batch_size, 1), ('--num-epochs', opt.num_epochs, 1),
                             ('--input-size', opt.input_size, 8), ('--num-gpus', opt.num_gpus, 0),
                             ('--num-data-workers', opt.num_workers, 0), ('--warmup-epochs', opt.warmup_epochs, 0),
                             ('--save-frequency', opt.save_frequency, 0), ('--log-interval', opt.log_interval, 0),
                             ('--resume-epoch', opt.resume_epoch, 0), ('--mixup-off-epoch', opt.mixup_off_epoch, 0),
                             ('--asymmrate', opt.asymmrate, 0), ('--shuffle-group', opt.shuffle_group, 0)):
        if value < low:
            raise ConfigError('%s must be >= %d, got %d' % (flag, low, value))
    if opt.warmup_epochs >= opt.num_epochs:
        raise ConfigError('--warmup-epochs %d leaves no epoch of the main schedule (--num-epochs %d)'
                          % (opt.warmup_epochs, opt.num_epochs))
    if not opt.lr > 0 or not math.isfinite(opt.lr):
        raise ConfigError('--lr must be a positive number, got %r' % opt.lr)
    if not 0 < opt.crop_ratio <= 1:
        raise ConfigError('--crop-ratio must be in (0, 1], got %r' % opt.crop_ratio)
    if not 0 <= opt.dropout < 1:
        raise ConfigError('--dropout must be in [0, 1), got %r' % opt.dropout)
    if opt.mixup and not opt.mixup_alpha > 0:
        raise ConfigError('--mixup-alpha must be > 0, got %r' % opt.mixup_alpha)
    if opt.teacher is not None:
        if not opt.temperature > 0:
            raise ConfigError('--temperature must be > 0, got %r' % opt.temperature)
        if not 0 <= opt.hard_weight <= 1:
            raise ConfigError('--hard-weight must be in [0, 1], got %r' % opt.hard_weight)
    elif opt.teacher_params:
        raise ConfigError('--teacher-params %s given without --teacher' % opt.teacher_params)
    if opt.dtype == 'float16' and opt.num_gpus == 0:
        raise ConfigError('--dtype float16 needs GPUs (--num-gpus > 0): MXNet has no fast float16 '
                          'convolutions on CPU; train in float32 on CPU')
    if opt.resume is not None and (opt.resume_params or opt.resume_states or opt.resume_epoch):
        raise ConfigError('--resume replaces --resume-params/--resume-states/--resume-epoch; give one or the other')
    if opt.resume_states and not opt.resume_params:
        raise ConfigError('--resume-states %s needs --resume-params' % opt.resume_states)
    if opt.resume_epoch >= opt.num_epochs:
        raise ConfigError('--resume-epoch %d is not before --num-epochs %d' % (opt.resume_epoch, opt.num_epochs))
    if opt.lr_mode == 'step' and any(e <= opt.warmup_epochs for e in decay_epochs(opt)):
        raise ConfigError('--lr-mode step decays at epochs %s, not all after the %d warm-up epoch(s)'
                          % (','.join(str(e) for e in decay_epochs(opt)), opt.warmup_epochs))
    return opt
