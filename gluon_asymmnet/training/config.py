"""What a training run is told: :class:`TrainConfig`, one validated dataclass, its fields the flags of ``train_imagenet.py``.

GluonCV's ``scripts/classification/imagenet/train_imagenet.py`` defines the
data, optimisation and checkpoint options; the AsymmNet authors added
``width_scale``, ``asymmrate``, ``shuffle_group``, ``dropout`` and
``dataset``. Two differences, both on purpose: with no data option at all the
run uses the bundled digits dataset (so the script runs out of the box), and
``resume='latest'`` (``--resume`` without a value) resumes from the newest
checkpoint in ``save_dir``.

Every field carries its command-line flag, help and group as metadata
(:func:`option`): adding a field adds its flag to ``train_imagenet.py``
(:mod:`gluon_asymmnet.training.cli`). A config is checked once, when it is
built; it is frozen afterwards (``dataclasses.replace`` builds a new, checked
one). Error messages name the flags.
"""
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..data.digits import DIGITS_IMAGE_SIZE
from ..model_zoo import get_model_list

__all__ = ['ConfigError', 'TrainConfig', 'DATASETS', 'KVSTORES', 'LR_MODES', 'option', 'flag_of', 'config_argv']


class ConfigError(ValueError):
    """A combination of training options that cannot work; the message names the flags."""


# Dataset name -> number of classes. The schedule counts the training images
# the data actually holds (1,281,167 for ImageNet-1k, as GluonCV hard-codes).
DATASETS = {'imagenet': 1000, 'imagenet200': 200}
DIGITS = 'digits'
DIGITS_CLASSES = 10

KVSTORES = ('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async')
LR_MODES = ('step', 'poly', 'cosine', 'linear')

_RECORD_FIELDS = ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx')
_DATA_FIELDS = _RECORD_FIELDS + ('data_dir',)


def option(default, help, group, flags=None, **argparse_kwargs):
    """A :class:`TrainConfig` field and its command-line flag.

    Parameters
    ----------
    default
        The field's default (``bool`` fields become ``store_true`` flags).
    help : str
        The flag's help.
    group : str
        The ``--help`` section.
    flags : tuple of str, optional
        Flag spellings (default ``--field-name``); the first is the one
        :func:`gluon_asymmnet.training.cli.config_argv` writes.
    **argparse_kwargs
        Passed to ``add_argument`` (``type``, ``choices``, ``nargs``, ``const``, ``metavar``).
    """
    return field(default=default, metadata=dict(help=help, group=group, flags=flags, argparse=argparse_kwargs))


def flag_of(f):
    """The command-line spellings of a :class:`TrainConfig` field."""
    return f.metadata['flags'] or ('--' + f.name.replace('_', '-'),)


@dataclass(frozen=True)
class TrainConfig:
    """A checked training configuration; field ``x_y`` is the flag ``--x-y`` of ``train_imagenet.py``.

    Derived on construction: ``dataset`` (``'digits'`` without data options,
    else ``'imagenet'`` unless given), ``input_size`` (224, or 32 on the
    digits) and ``lr_decay_epoch`` as a tuple of ints.

    Raises
    ------
    ConfigError
        Naming the offending flags and values.
    """
    # data
    rec_train: Optional[str] = option(None, 'training RecordIO file (.rec)', 'data')
    rec_train_idx: Optional[str] = option(None, 'index of the training RecordIO file (.idx)', 'data')
    rec_val: Optional[str] = option(None, 'validation RecordIO file (.rec)', 'data')
    rec_val_idx: Optional[str] = option(None, 'index of the validation RecordIO file (.idx)', 'data')
    data_dir: Optional[str] = option(
        None, 'ImageNet folders: <data-dir>/train/<synset>/*.JPEG and <data-dir>/val/<synset>/*.JPEG', 'data')
    dataset: Optional[str] = option(None, 'dataset the data flags point at (number of classes; default imagenet)',
                                    'data', choices=sorted(DATASETS))
    input_size: Optional[int] = option(None, 'size of the input images (default 224; 32 on the bundled digits)',
                                       'data', type=int)
    crop_ratio: float = option(0.875, 'validation centre-crop ratio: resize to ceil(input-size / crop-ratio) first',
                               'data')
    num_workers: int = option(4, 'number of preprocessing workers (0: in the main process)', 'data',
                              flags=('-j', '--num-data-workers'))
    # model
    model: str = option('asymmnet_large', 'network to train (default asymmnet_large)', 'model',
                        choices=get_model_list())
    width_scale: float = option(1.0, 'width multiplier (default 1.0)', 'model')
    asymmrate: int = option(1, 'feature-reuse rate (default 1; ignored by mobilenetv3_* and mobilenetv2)', 'model')
    shuffle_group: int = option(0, 'channel-shuffle groups after feature reuse (default 0: off)', 'model')
    dropout: float = option(0.2, 'dropout before the classifier (default 0.2)', 'model')
    last_gamma: bool = option(False, 'zero-initialise the last BatchNorm gamma of every residual bottleneck', 'model')
    mode: str = option('hybrid', 'hybrid (static graph, default) or imperative', 'model',
                       choices=('hybrid', 'imperative'))
    dtype: str = option('float32', 'training data type; float16 trains with multi-precision SGD on GPUs only',
                        'model', choices=('float32', 'float16'))
    # optimisation
    batch_size: int = option(32, 'batch size per device (default 32)', 'optimisation')
    num_gpus: int = option(0, 'number of GPUs (default 0: CPU)', 'optimisation')
    num_epochs: int = option(3, 'number of training epochs', 'optimisation')
    lr: float = option(0.1, 'peak learning rate (default 0.1)', 'optimisation')
    lr_mode: str = option('step', 'learning-rate schedule after warm-up (default step)', 'optimisation',
                          choices=LR_MODES)
    lr_decay: float = option(0.1, 'step decay factor (default 0.1)', 'optimisation')
    lr_decay_period: int = option(0, 'step decay every this many epochs (default 0: use --lr-decay-epoch)',
                                  'optimisation')
    lr_decay_epoch: Tuple[int, ...] = option(
        (40, 60), 'comma-separated epochs at which the step schedule decays (default 40,60)', 'optimisation',
        type=str)
    warmup_epochs: int = option(0, 'epochs of linear warm-up from 0 to --lr (default 0)', 'optimisation')
    momentum: float = option(0.9, 'Nesterov momentum (default 0.9)', 'optimisation')
    wd: float = option(0.0001, 'weight decay (default 0.0001)', 'optimisation')
    no_wd: bool = option(False, 'no weight decay on BatchNorm gamma/beta and biases', 'optimisation')
    label_smoothing: bool = option(False, 'label smoothing with eta 0.1', 'optimisation')
    mixup: bool = option(False, 'mixup training', 'optimisation')
    mixup_alpha: float = option(0.2, 'mixup Beta(alpha, alpha) (default 0.2)', 'optimisation')
    mixup_off_epoch: int = option(0, 'turn mixup off for the last this many epochs (default 0)', 'optimisation')
    teacher: Optional[str] = option(None, 'distil from this teacher (a model of this package or of GluonCV)',
                                    'optimisation')
    teacher_params: Optional[str] = option(
        None, "teacher weights; default: GluonCV's pretrained file, if it is on this machine", 'optimisation')
    temperature: float = option(20.0, 'distillation temperature (default 20)', 'optimisation')
    hard_weight: float = option(0.5, 'weight of the loss on the true label in distillation (default 0.5)',
                                'optimisation')
    seed: int = option(0, 'seed of initialisation, data order, augmentation, dropout and mixup (default 0)',
                       'optimisation')
    kvstore: str = option('device', 'gradient aggregation: local/device on one machine, dist_* across machines',
                          'optimisation', choices=KVSTORES)
    # checkpoints and logs
    save_dir: str = option('params', 'checkpoints, log file, TensorBoard scalars and the curve plot go here',
                           'checkpoints and logs')
    save_frequency: int = option(10, 'save a checkpoint every this many epochs (0: only best and last)',
                                 'checkpoints and logs')
    resume: Optional[str] = option(
        None, 'resume from the newest checkpoint in --save-dir (no value) or from this .params file',
        'checkpoints and logs', nargs='?', const='latest', metavar='PARAMS')
    resume_params: str = option('', 'parameters to start from (GluonCV)', 'checkpoints and logs')
    resume_states: str = option('', 'optimizer states to start from (GluonCV)', 'checkpoints and logs')
    resume_epoch: int = option(0, 'epoch to start from (GluonCV)', 'checkpoints and logs')
    log_interval: int = option(50, 'log every this many batches (0: never)', 'checkpoints and logs')
    logging_file: str = option('train_imagenet.log', 'log file; a relative name is placed in --save-dir',
                               'checkpoints and logs')

    def __post_init__(self):
        self._resolve_data()
        self._set('lr_decay_epoch', _epoch_list(self.lr_decay_epoch))
        self._check()

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- derived values

    @property
    def demo_data(self):
        """True when no data option is set: the run uses the bundled digits dataset."""
        return all(getattr(self, k) is None for k in _DATA_FIELDS)

    @property
    def classes(self):
        """Number of classes of ``dataset``."""
        return DIGITS_CLASSES if self.dataset == DIGITS else DATASETS[self.dataset]

    @property
    def device_batch(self):
        """Images per step on this worker: ``batch_size`` on each of its devices."""
        return self.batch_size * max(1, self.num_gpus)

    @property
    def decay_epochs(self):
        """Epochs (counted from the start of training) at which the step schedule decays."""
        if self.lr_decay_period > 0:
            return tuple(range(self.lr_decay_period, self.num_epochs, self.lr_decay_period))
        return self.lr_decay_epoch

    @property
    def mixup_until(self):
        """The first epoch without mixup (``num_epochs`` when it stays on)."""
        return self.num_epochs - self.mixup_off_epoch

    # ---------------------------------------------------------------- checks

    def _resolve_data(self):
        if self.demo_data:
            if self.dataset not in (None, DIGITS):
                raise ConfigError('--dataset %s needs data: give --rec-train/--rec-train-idx/--rec-val/'
                                  '--rec-val-idx or --data-dir (without data flags the bundled digits '
                                  'dataset is used)' % self.dataset)
            self._set('dataset', DIGITS)
            self._set('input_size', self.input_size or DIGITS_IMAGE_SIZE)
            return
        rec = [k for k in _RECORD_FIELDS if getattr(self, k) is not None]
        if rec and self.data_dir is not None:
            raise ConfigError('give either the RecordIO flags or --data-dir, not both (got --data-dir %s and %s)'
                              % (self.data_dir, ', '.join(_flag(k) for k in rec)))
        if rec and len(rec) != 4:
            missing = [k for k in _RECORD_FIELDS if getattr(self, k) is None]
            raise ConfigError('RecordIO training needs all four files; missing %s'
                              % ', '.join(_flag(k) for k in missing))
        if self.dataset == DIGITS:
            raise ConfigError('dataset %r is the bundled data, which takes no data flags' % DIGITS)
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ConfigError('--dataset %s: unknown; known: %s' % (self.dataset, ', '.join(sorted(DATASETS))))
        self._set('dataset', self.dataset or 'imagenet')
        self._set('input_size', self.input_size or 224)

    def _check(self):
        for name, low in (('batch_size', 1), ('num_epochs', 1), ('input_size', 8), ('num_gpus', 0),
                          ('num_workers', 0), ('warmup_epochs', 0), ('save_frequency', 0), ('log_interval', 0),
                          ('resume_epoch', 0), ('mixup_off_epoch', 0), ('asymmrate', 0), ('shuffle_group', 0)):
            if getattr(self, name) < low:
                raise ConfigError('%s must be >= %d, got %d' % (_flag(name), low, getattr(self, name)))
        for name, allowed in (('model', get_model_list()), ('mode', ('hybrid', 'imperative')),
                              ('dtype', ('float32', 'float16')), ('lr_mode', LR_MODES), ('kvstore', KVSTORES)):
            if getattr(self, name) not in allowed:
                raise ConfigError('%s %s: choose from %s' % (_flag(name), getattr(self, name), ', '.join(allowed)))
        if self.warmup_epochs >= self.num_epochs:
            raise ConfigError('--warmup-epochs %d leaves no epoch of the main schedule (--num-epochs %d)'
                              % (self.warmup_epochs, self.num_epochs))
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError('--lr must be a positive number, got %r' % self.lr)
        if not 0 < self.crop_ratio <= 1:
            raise ConfigError('--crop-ratio must be in (0, 1], got %r' % self.crop_ratio)
        if not 0 <= self.dropout < 1:
            raise ConfigError('--dropout must be in [0, 1), got %r' % self.dropout)
        if self.mixup and not self.mixup_alpha > 0:
            raise ConfigError('--mixup-alpha must be > 0, got %r' % self.mixup_alpha)
        if self.teacher is not None:
            if not self.temperature > 0:
                raise ConfigError('--temperature must be > 0, got %r' % self.temperature)
            if not 0 <= self.hard_weight <= 1:
                raise ConfigError('--hard-weight must be in [0, 1], got %r' % self.hard_weight)
        elif self.teacher_params:
            raise ConfigError('--teacher-params %s given without --teacher' % self.teacher_params)
        if self.dtype == 'float16' and self.num_gpus == 0:
            raise ConfigError('--dtype float16 needs GPUs (--num-gpus > 0): MXNet has no fast float16 '
                              'convolutions on CPU; train in float32 on CPU')
        if self.resume is not None and (self.resume_params or self.resume_states or self.resume_epoch):
            raise ConfigError('--resume replaces --resume-params/--resume-states/--resume-epoch; '
                              'give one or the other')
        if self.resume_states and not self.resume_params:
            raise ConfigError('--resume-states %s needs --resume-params' % self.resume_states)
        if self.resume_epoch >= self.num_epochs:
            raise ConfigError('--resume-epoch %d is not before --num-epochs %d' % (self.resume_epoch, self.num_epochs))
        if self.lr_mode == 'step' and any(e <= self.warmup_epochs for e in self.decay_epochs):
            raise ConfigError('--lr-mode step decays at epochs %s, not all after the %d warm-up epoch(s)'
                              % (','.join(str(e) for e in self.decay_epochs), self.warmup_epochs))


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def config_argv(values):
    """The ``train_imagenet.py`` arguments that set ``values`` (field name -> value), in field order.

    ``parse_args(config_argv(v)) == TrainConfig(**v)`` for any valid ``v``.
    """
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise ConfigError('not TrainConfig fields: %s' % ', '.join(sorted(unknown)))
    argv = []
    for f in _FIELDS.values():
        if f.name not in values:
            continue
        value, flag = values[f.name], flag_of(f)[0]
        if isinstance(f.default, bool):
            argv += [flag] if value else []   # a switch off is its default
        elif value is not None:
            text = ','.join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)
            argv += [flag, text]
    return argv


def _flag(name):
    """The long flag of a field, as error messages name it."""
    return [s for s in flag_of(_FIELDS[name]) if s.startswith('--')][0]


def _epoch_list(value):
    """``'40,60'`` or ``[40, 60]`` -> ``(40, 60)``."""
    try:
        if isinstance(value, str):
            return tuple(int(e) for e in value.split(',') if e.strip())
        epochs = tuple(int(e) for e in value)
        if epochs == tuple(value):
            return epochs
    except (TypeError, ValueError):
        pass
    raise ConfigError('--lr-decay-epoch must be comma-separated integers, got %r' % (value,))
