"""What a training run is told: :class:`TrainConfig`, one validated dataclass, its fields the flags of ``train_imagenet.py``.

GluonCV's ``scripts/classification/imagenet/train_imagenet.py`` defines the
data, optimisation and checkpoint options; the AsymmNet authors added
``width_scale``, ``asymmrate``, ``shuffle_group``, ``doshuffle``,
``dropout``, ``dataset``, ``tag_name`` and ``dry_run``. Differences, on
purpose: with no data option at all the run uses the bundled digits dataset
(so the script runs out of the box); ``resume='latest'`` (``--resume``
without a value) resumes from the newest checkpoint in ``save_dir``; your own
data (``image_folder``, or RecordIO with any class count) and fine-tuning
(``pretrained``, ``finetune_from``) are additions. docs/flags.md lists every
flag of both scripts and what it does here.

The class count comes from ``classes``, else from a known ``dataset``
(imagenet 1000, imagenet200 200), else from the data: the packer's
``classes.txt`` beside ``rec_train``, or the class folders of ``data_dir`` /
``image_folder``; RecordIO without ``classes.txt`` is ImageNet (1000), as
GluonCV assumes. Data with more classes than that count is refused (its
labels would reach past the classifier). Reading the class list is the only
file access of a config.

Every field carries its command-line flag, help and group as metadata
(:func:`option`): adding a field adds its flag to ``train_imagenet.py``
(:mod:`gluon_asymmnet.training.cli`). The model and preprocessing fields are
the flags ``eval.py`` and the export share (:func:`model_option`,
:mod:`gluon_asymmnet.model_flags`; a shared flag the class does not declare
gets a field of its own, :func:`_shared_flag_fields`); left at None they take the model's
defaults from the registry, and a flag the model does not take is refused. A config is checked once, when it is
built; it is frozen afterwards (``dataclasses.replace`` builds a new, checked
one). Error messages name the flags.
"""
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ..data.digits import DIGITS_IMAGE_SIZE
from ..data.folders import folder_class_names
from ..data.loader import record_class_names
from ..finetune import NUM_STAGES
from ..model_flags import FLAGS, flag_help, model_dests, model_kwargs, parse_rgb
from ..model_zoo import get_model_list, get_model_spec
from ..asymmnet import MAX_MULTIPLIER
from ..preprocessing import MIN_INPUT_SIZE

__all__ = ['ConfigError', 'TrainConfig', 'DATASETS', 'KVSTORES', 'LR_MODES', 'option', 'model_option', 'flag_of',
           'config_argv']


class ConfigError(ValueError):
    """A combination of training options that cannot work; the message names the flags."""


# Known dataset names -> number of classes. The schedule counts the training
# images the data actually holds (1,281,167 for ImageNet-1k, which GluonCV hard-codes).
DATASETS = {'imagenet': 1000, 'imagenet200': 200}
DIGITS = 'digits'
DIGITS_CLASSES = 10
IMAGENET_CLASSES = 1000

KVSTORES = ('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async')
LR_MODES = ('step', 'poly', 'cosine', 'linear', 'constant')
MODES = ('hybrid', 'imperative', 'symbolic')
BN_STATS = ('train', 'keep')

_RECORD_FIELDS = ('rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx')
_DATA_FIELDS = _RECORD_FIELDS + ('data_dir', 'image_folder')
_NAME = re.compile(r'(?!\.+$)[A-Za-z0-9_.-]+$')  # not '.' or '..': a name goes into file and folder names


def option(default, help, group, flags=None, negation=None, **argparse_kwargs):
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
    negation : str, optional
        For a ``bool`` field: a second flag that sets it back to False (the
        later of the two on a command line wins).
    **argparse_kwargs
        Passed to ``add_argument`` (``type``, ``choices``, ``nargs``, ``const``, ``metavar``).
    """
    return field(default=default, metadata=dict(help=help, group=group, flags=flags, negation=negation,
                                                argparse=argparse_kwargs))


def model_option(dest, group, default=None, help=None, **argparse_kwargs):
    """A :class:`TrainConfig` field for a shared flag of :mod:`gluon_asymmnet.model_flags` (its spellings and help).

    ``default`` None: the model's default (:meth:`TrainConfig._resolve_model`).
    """
    flag = FLAGS[dest]
    if flag.type is not bool:
        argparse_kwargs.setdefault('type', flag.type)
    return option(default, help or flag_help(dest), group, flags=flag.flags, **argparse_kwargs)


def _shared_flag_fields(cls):
    """Give ``cls`` a ``model``-group field for every shared flag it does not declare itself.

    A constructor argument added to :data:`~gluon_asymmnet.model_flags.FLAGS`
    becomes a flag of ``train_imagenet.py`` with nothing to add here; the
    fields declared in the class keep their place in ``--help``.
    """
    for dest, flag in FLAGS.items():
        if dest not in cls.__annotations__:
            cls.__annotations__[dest] = bool if flag.type is bool else Optional[flag.type]
            setattr(cls, dest, model_option(dest, 'model', False if flag.type is bool else None))
    return cls


def flag_of(f):
    """The command-line spellings of a :class:`TrainConfig` field."""
    return f.metadata['flags'] or ('--' + f.name.replace('_', '-'),)


@dataclass(frozen=True)
@_shared_flag_fields
class TrainConfig:
    """A checked training configuration; field ``x_y`` is the flag ``--x-y`` of ``train_imagenet.py``.

    Derived on construction: ``classes`` and ``dataset`` (module notes;
    ``'digits'`` without data options, ``'imagenet'`` for 1000 classes from
    RecordIO or ``data_dir``, else the data folder's name), ``input_size``
    (224, or 32 on the digits), ``shuffle_group`` (2 with ``doshuffle``, the
    authors' default), the model's constructor arguments and preprocessing
    left at None (from the registry: ``width_scale`` 1.0, ``asymmrate`` 1,
    ...; None where the model does not take the argument) and the
    comma-separated values as tuples.

    Raises
    ------
    ConfigError
        Naming the offending flags and values.
    gluon_asymmnet.data.DataError
        ``image_folder`` is missing or has no class folders.
    """
    # data
    rec_train: Optional[str] = option(None, 'training RecordIO file (.rec)', 'data')
    rec_train_idx: Optional[str] = option(None, 'index of the training RecordIO file (.idx)', 'data')
    rec_val: Optional[str] = option(None, 'validation RecordIO file (.rec)', 'data')
    rec_val_idx: Optional[str] = option(None, 'index of the validation RecordIO file (.idx)', 'data')
    data_dir: Optional[str] = option(
        None, 'ImageNet folders: <data-dir>/train/<synset>/*.JPEG and <data-dir>/val/<synset>/*.JPEG', 'data')
    image_folder: Optional[str] = option(
        None, 'your own images: DIR/train/<class>/* and DIR/val/<class>/*, or DIR/<class>/* split by '
              '--val-fraction and --split-seed', 'data', metavar='DIR')
    val_fraction: float = option(0.2, 'held-out fraction of each class of a single --image-folder (default 0.2)',
                                 'data')
    split_seed: int = option(0, 'seed of that held-out split (default 0; independent of --seed)', 'data')
    classes: Optional[int] = model_option(
        'classes', 'data', help="number of classes (default: --dataset's, else the data's: classes.txt beside "
                                "--rec-train, the class folders; RecordIO without classes.txt: 1000)")
    dataset: Optional[str] = option(
        None, 'name of the data in checkpoint names; imagenet (1000 classes) and imagenet200 (200) also set the '
              'class count (default: imagenet for 1000 classes, else the data folder\'s name)', 'data')
    input_size: Optional[int] = model_option(
        'input_size', 'data', help="size of the input images (default: the model's, 224; 32 on the bundled digits)")
    crop_ratio: Optional[float] = model_option('crop_ratio', 'data')
    rgb_mean: Optional[Tuple[float, ...]] = model_option('rgb_mean', 'data')
    rgb_std: Optional[Tuple[float, ...]] = model_option('rgb_std', 'data')
    min_random_area: Optional[float] = option(
        None, "smallest area fraction of the training crops (MXNet ImageRecordIter's min_random_area; default "
              "0.08, GluonCV's ImageNet value; 0.5 on the digits)", 'data', type=float)
    no_mirror: bool = option(False, 'no random horizontal flips in training (digits, text: anything handed)', 'data')
    num_training_samples: Optional[int] = option(
        None, "training images the schedule counts per epoch (default: the data's real count; GluonCV's default "
              "was ImageNet's 1281167)", 'data', type=int)
    num_workers: int = option(4, 'number of preprocessing workers (0: in the main process)', 'data',
                              flags=('-j', '--num-data-workers'))
    max_image_pixels: Optional[int] = option(
        None, 'images with more pixels are skipped, named and never decoded (decompression bombs; default 89478485, '
              "PIL's)", 'data', type=int)
    # model
    model: str = model_option('model', 'model', 'asymmnet_large', help='network to train (default asymmnet_large)',
                              choices=get_model_list())
    width_scale: Optional[float] = model_option('width_scale', 'model')
    asymmrate: Optional[int] = model_option('asymmrate', 'model')
    shuffle_group: Optional[int] = model_option('shuffle_group', 'model')
    doshuffle: bool = option(False, "channel shuffle after feature reuse, in --shuffle-group groups (2 unless given; "
                                    "the authors' flag)", 'model')
    corrected_first_block: bool = model_option('corrected_first_block', 'model', False)
    dropout: Optional[float] = model_option('dropout', 'model')
    last_gamma: bool = option(False, 'zero-initialise the last BatchNorm gamma of every residual bottleneck '
                                     "(--no-last-gamma: not, as the authors' train.py, where the flag never reaches "
                                     'the network)', 'model', negation='--no-last-gamma')
    mode: str = option('hybrid', 'hybrid (static graph, default), symbolic (the same here) or imperative', 'model',
                       choices=MODES)
    dtype: str = option('float32', 'training data type; float16 trains with multi-precision SGD on GPUs only',
                        'model', choices=('float32', 'float16'))
    # fine-tuning
    pretrained: Optional[str] = option(
        None, "start from the model store's weights for this model and width (no value), or the entry whose hash "
              'starts with HASH; with other classes the classifier starts anew', 'fine-tuning',
        flags=('--pretrained', '--use-pretrained'), nargs='?', const='store', metavar='HASH')
    finetune_from: Optional[str] = option(
        None, 'start from this parameter file (any layout, e.g. a checkpoint of another run); the classifier '
              'starts anew when its classes differ', 'fine-tuning', metavar='FILE')
    backbone_lr_mult: Optional[float] = option(
        None, 'learning rate of everything but the classifier, as a multiple of --lr (GluonCV lr_mult; default '
              '0.1 under a new classifier, else 1)', 'fine-tuning', type=float)
    freeze_stages: int = option(0, 'do not train stages 1..K (the layers at strides 2..2**K; their BatchNorm '
                                   'statistics are kept; default 0)', 'fine-tuning', metavar='K')
    bn_stats: str = option('train', "train: BatchNorm statistics follow the new data (frozen stages excepted); keep: "
                                    'every BatchNorm keeps its pretrained statistics', 'fine-tuning', choices=BN_STATS)
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
    warmup_epochs: int = option(0, 'epochs of linear warm-up from --warmup-lr to --lr (default 0); a warm-up longer '
                                   'than the run is a warning', 'optimisation')
    warmup_lr: float = option(0.0, 'learning rate the warm-up starts from (default 0)', 'optimisation')
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
    tag_name: Optional[str] = option(
        None, "run folder <save-dir>/<dataset>/<model>_<tag>_<MMDD-HHMMSS>, as the authors' train.py names it "
              '(--resume then continues the newest such folder)', 'checkpoints and logs')
    save_frequency: int = option(10, 'save a checkpoint every this many epochs (0: only best and last)',
                                 'checkpoints and logs')
    resume: Optional[str] = option(
        None, 'resume from the newest checkpoint in --save-dir (no value) or from this .params file (without '
              'the .json this trainer writes beside it: its weights only, from epoch 0)', 'checkpoints and logs',
        nargs='?', const='latest', metavar='PARAMS')
    overwrite: bool = option(
        False, 'start a new run in a --save-dir that holds the checkpoints of another: they are removed first (without '
               'it, and without --resume, such a folder is refused)', 'checkpoints and logs')
    resume_with_changes: bool = option(
        False, "with --resume: go on although settings or data differ from the checkpoint's (each change is "
               'logged; the run is then no longer a continuation). Without it they are refused', 'checkpoints and logs')
    resume_params: str = option('', 'parameters to start from (GluonCV)', 'checkpoints and logs')
    resume_states: str = option('', 'optimizer states to start from (GluonCV; a pickle of anything but an optimizer '
                                    'state is refused)', 'checkpoints and logs')
    resume_epoch: int = option(0, 'epoch to start from (GluonCV)', 'checkpoints and logs')
    log_interval: int = option(50, 'log every this many batches (0: never)', 'checkpoints and logs')
    logging_file: str = option('train_imagenet.log', 'log file; a relative name is placed in --save-dir',
                               'checkpoints and logs')
    dry_run: int = option(0, 'time this many forward passes of one image before training and log the speed (the '
                             "authors' speed test)", 'checkpoints and logs', metavar='N')

    def __post_init__(self):
        self._set('lr_decay_epoch', _epoch_list(self.lr_decay_epoch))
        for name in ('rgb_mean', 'rgb_std'):
            if getattr(self, name) is not None:
                self._set(name, _rgb(getattr(self, name), name))
        self._check()
        self._resolve_data()
        if self.doshuffle and not self.shuffle_group:
            self._set('shuffle_group', 2)

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- derived values

    @property
    def demo_data(self):
        """True when no data option is set: the run uses the bundled digits dataset."""
        return all(getattr(self, k) is None for k in _DATA_FIELDS)

    @property
    def finetune(self):
        """The weights fine-tuning starts from: ``finetune_from``, ``pretrained`` or None."""
        return self.finetune_from or self.pretrained

    @property
    def model_kwargs(self):
        """The ``get_model`` arguments of the network (:func:`gluon_asymmnet.model_flags.model_kwargs`)."""
        return model_kwargs(self.model, {dest: getattr(self, dest) for dest in model_dests()})

    @property
    def model_label(self):
        """``asymmnet_large x0.5``: the model and its width, for messages (the name alone without a width)."""
        return self.model if self.width_scale is None else '%s x%g' % (self.model, self.width_scale)

    @property
    def warmup_longer_than_run(self):
        """True when the run ends inside the warm-up (allowed, as in GluonCV; the run warns)."""
        return self.warmup_epochs >= self.num_epochs

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

    def _resolve_model(self):
        """The model's constructor arguments and preprocessing left at None, from the registry.

        Arguments the model does not take stay None (a value given for one
        is refused); ``classes`` comes from the data (:meth:`_resolve_data`).
        """
        spec = get_model_spec(self.model)
        try:
            given = self.model_kwargs
        except ValueError as err:
            raise ConfigError(str(err)) from None
        config = spec.config(given)
        for dest in model_dests():
            if FLAGS[dest].argument is not None and dest != 'classes':
                self._set(dest, config.get(FLAGS[dest].argument))
        for dest in ('crop_ratio', 'rgb_mean', 'rgb_std'):
            if getattr(self, dest) is None:
                self._set(dest, getattr(spec.preprocess, FLAGS[dest].field))

    def _resolve_data(self):
        for name in ('dataset', 'tag_name'):
            value = getattr(self, name)
            if value is not None and not _NAME.match(value):
                raise ConfigError('%s %r: a name of letters, digits, "_", "." and "-" (it goes into file names)'
                                  % (_flag(name), value))
        if self.demo_data:
            if self.dataset not in (None, DIGITS):
                raise ConfigError('--dataset %s needs data: give --rec-train/--rec-train-idx/--rec-val/'
                                  '--rec-val-idx, --data-dir or --image-folder (without data flags the bundled '
                                  'digits dataset is used)' % self.dataset)
            if self.classes not in (None, DIGITS_CLASSES):
                raise ConfigError('--classes %d: the bundled digits have %d classes (give your data with '
                                  '--image-folder or --rec-*)' % (self.classes, DIGITS_CLASSES))
            self._set('dataset', DIGITS)
            self._set('classes', DIGITS_CLASSES)
            self._set('input_size', self.input_size or DIGITS_IMAGE_SIZE)
            return
        given = [k for k in _DATA_FIELDS if getattr(self, k) is not None]
        rec = [k for k in _RECORD_FIELDS if k in given]
        sources = (['the RecordIO flags'] if rec else []) + [_flag(k) for k in ('data_dir', 'image_folder')
                                                              if k in given]
        if len(sources) > 1:
            raise ConfigError('give one data source, not %s (got %s)'
                              % (' and '.join(sources), ', '.join('%s %s' % (_flag(k), getattr(self, k))
                                                                  for k in given)))
        if rec and len(rec) != 4:
            missing = [k for k in _RECORD_FIELDS if getattr(self, k) is None]
            raise ConfigError('RecordIO training needs all four files; missing %s'
                              % ', '.join(_flag(k) for k in missing))
        if self.dataset == DIGITS:
            raise ConfigError('dataset %r is the bundled data, which takes no data flags' % DIGITS)
        known = DATASETS.get(self.dataset)
        if known and self.classes not in (None, known):
            raise ConfigError('--dataset %s has %d classes, --classes says %d: drop one, or name your data '
                              'otherwise' % (self.dataset, known, self.classes))
        names = self._data_class_names()
        classes = self.classes or known or (len(names) if names else IMAGENET_CLASSES)
        if names and len(names) > classes:
            # Their labels would reach past the classifier (eval.py refuses the same data).
            raise ConfigError('%s has %d classes (%s, ...), more than the %d of %s: give the data of those classes, '
                              'or drop %s to take the class count from the data'
                              % (self._class_list_source(), len(names), ', '.join(names[:3]), classes,
                                 '--classes %d' % classes if self.classes else '--dataset %s' % self.dataset,
                                 '--classes' if self.classes else '--dataset'))
        self._set('classes', classes)
        self._set('dataset', self.dataset or self._data_name(classes))
        self._set('input_size', self.input_size or get_model_spec(self.model).preprocess.input_size)

    def _data_class_names(self):
        """The data's class list (module notes), or None for RecordIO without classes.txt."""
        if self.image_folder is not None:
            return folder_class_names(self.image_folder)
        if self.data_dir is not None:
            train = os.path.join(self.data_dir, 'train')
            return folder_class_names(train) if os.path.isdir(train) else None
        return record_class_names(self.rec_train) or None

    def _class_list_source(self):
        """Where :meth:`_data_class_names` reads the class list, for messages."""
        if self.image_folder is not None:
            return '--image-folder %s' % self.image_folder
        if self.data_dir is not None:
            return '--data-dir %s (class folders of %s)' % (self.data_dir, os.path.join(self.data_dir, 'train'))
        return '--rec-train %s (its classes.txt)' % self.rec_train

    def _data_name(self, classes):
        """``imagenet`` for 1000 classes of RecordIO/``data_dir``, else the data folder's name."""
        if self.image_folder is None and classes == IMAGENET_CLASSES:
            return 'imagenet'
        where = self.image_folder or self.data_dir or os.path.dirname(os.path.abspath(self.rec_train))
        name = re.sub(r'[^A-Za-z0-9_.-]', '_', os.path.basename(os.path.normpath(os.path.abspath(where))))
        return name.strip('.') or 'data'

    def _check_finetune(self):
        if self.pretrained and self.finetune_from:
            raise ConfigError('give either --pretrained or --finetune-from, not both')
        if not self.finetune:
            for name, default in (('backbone_lr_mult', None), ('freeze_stages', 0), ('bn_stats', 'train')):
                if getattr(self, name) != default:
                    raise ConfigError('%s applies when fine-tuning: add --pretrained or --finetune-from FILE'
                                      % _flag(name))
        if self.freeze_stages > NUM_STAGES:
            raise ConfigError('--freeze-stages %d: the networks have %d stages (strides 2 to 32)'
                              % (self.freeze_stages, NUM_STAGES))

    def _check(self):
        _check_ranges(self)
        for name, allowed in (('model', get_model_list()), ('mode', MODES), ('dtype', ('float32', 'float16')),
                              ('lr_mode', LR_MODES), ('kvstore', KVSTORES), ('bn_stats', BN_STATS)):
            if getattr(self, name) not in allowed:
                raise ConfigError('%s %s: choose from %s' % (_flag(name), getattr(self, name), ', '.join(allowed)))
        self._resolve_model()
        if not self.warmup_lr <= self.lr:
            raise ConfigError('--warmup-lr must be in [0, --lr %g], got %r' % (self.lr, self.warmup_lr))
        if min(self.rgb_std) <= 0:
            raise ConfigError('--rgb-std must be positive, got %s' % ','.join('%g' % v for v in self.rgb_std))
        self._check_finetune()
        if self.doshuffle:
            if self.shuffle_group == 1:
                raise ConfigError('--doshuffle with --shuffle-group 1 shuffles nothing: give 2 or more groups')
            if not self.asymmrate:
                raise ConfigError('--doshuffle shuffles the reused features of AsymmNet: it needs a model with '
                                  'feature reuse and --asymmrate > 0 (got --model %s --asymmrate %s)'
                                  % (self.model, self.asymmrate))
        _check_ranges(self, ('crop_ratio', 'dropout'))  # resolved from the model when not given
        if self.teacher is None and self.teacher_params:
            raise ConfigError('--teacher-params %s given without --teacher' % self.teacher_params)
        if self.dtype == 'float16' and self.num_gpus == 0:
            raise ConfigError('--dtype float16 needs GPUs (--num-gpus > 0): MXNet has no fast float16 '
                              'convolutions on CPU; train in float32 on CPU')
        if self.resume is not None and (self.resume_params or self.resume_states or self.resume_epoch):
            raise ConfigError('--resume replaces --resume-params/--resume-states/--resume-epoch; '
                              'give one or the other')
        if self.overwrite and (self.resume == 'latest' or self.resume_params):
            raise ConfigError('--overwrite starts a new run in place of the one in --save-dir; --resume%s continues '
                              'it: give one or the other' % ('' if self.resume else '-params'))
        if self.resume_with_changes and self.resume is None:
            raise ConfigError('--resume-with-changes goes with --resume')
        if self.resume_states and not self.resume_params:
            raise ConfigError('--resume-states %s needs --resume-params' % self.resume_states)
        if self.resume_epoch >= self.num_epochs:
            raise ConfigError('--resume-epoch %d is not before --num-epochs %d' % (self.resume_epoch, self.num_epochs))
        if self.lr_mode == 'step' and any(e <= self.warmup_epochs for e in self.decay_epochs):
            raise ConfigError('--lr-mode step decays at epochs %s, not all after the %d warm-up epoch(s)'
                              % (','.join(str(e) for e in self.decay_epochs), self.warmup_epochs))


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}

# The values every numeric field (flag) accepts, as intervals; non-finite values are refused everywhere.
# Some are checked again where they act, with more words (--freeze-stages, --warmup-lr, the model's arguments).
RANGES = {
    # data
    'val_fraction': '(0, 1)', 'split_seed': '[0, 4294967295]', 'classes': '[1, inf)',
    'input_size': '[%d, inf)' % MIN_INPUT_SIZE, 'crop_ratio': '(0, 1]', 'min_random_area': '(0, 1]',
    'num_training_samples': '[1, inf)', 'num_workers': '[0, inf)', 'max_image_pixels': '[1, inf)',
    # model
    'width_scale': '(0, %g]' % MAX_MULTIPLIER, 'asymmrate': '[0, inf)', 'shuffle_group': '[0, inf)',
    'dropout': '[0, 1)',
    # fine-tuning
    'backbone_lr_mult': '[0, 1000]', 'freeze_stages': '[0, inf)',
    # optimisation: a negative decay or momentum would train the wrong way, or (NAG) silently without momentum
    'batch_size': '[1, inf)', 'num_gpus': '[0, inf)', 'num_epochs': '[1, inf)', 'lr': '(0, inf)',
    'lr_decay': '(0, 1]', 'lr_decay_period': '[0, inf)', 'warmup_epochs': '[0, inf)', 'warmup_lr': '[0, inf)',
    'momentum': '[0, 1)', 'wd': '[0, 1)', 'mixup_alpha': '(0, inf)', 'mixup_off_epoch': '[0, inf)',
    'temperature': '(0, inf)', 'hard_weight': '[0, 1]', 'seed': '[0, 4294967295]',
    # checkpoints and logs
    'save_frequency': '[0, inf)', 'resume_epoch': '[0, inf)', 'log_interval': '[0, inf)', 'dry_run': '[0, inf)',
}
_INTERVAL = re.compile(r'^([\[(])(\S+), (\S+)([\])])$')


def _check_ranges(cfg, names=None):
    """Refuse a non-finite, fractional (integer fields) or out-of-range value of the fields ``names`` (all)."""
    for name in names or RANGES:
        value = getattr(cfg, name)
        if value is None:
            continue
        opening, low, high, closing = _INTERVAL.match(RANGES[name]).groups()
        low, high = float(low), float(high)
        integer = _FIELDS[name].type in (int, Optional[int])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
                (integer and int(value) != value):
            raise ConfigError('%s must be a finite %s in %s, got %r'
                              % (_flag(name), 'integer' if integer else 'number', RANGES[name], value))
        if value < low or value > high or (opening == '(' and value == low) or (closing == ')' and value == high):
            if high == math.inf and opening == '[':
                raise ConfigError('%s must be >= %s, got %r' % (_flag(name), '%g' % low, value))
            raise ConfigError('%s must be in %s, got %r' % (_flag(name), RANGES[name], value))


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


def _rgb(value, name):
    """``'1,2,3'`` or 3 numbers -> a tuple of 3 floats."""
    try:
        return parse_rgb(value, _flag(name))
    except ValueError as err:
        raise ConfigError(str(err)) from None


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
