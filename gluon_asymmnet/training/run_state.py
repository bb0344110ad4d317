"""The run's state on disk: checkpoints named as the authors named them, written atomically, found again to resume.

(:mod:`gluon_asymmnet.checkpoint` reads parameter files of every layout into
a network; this module is about a training run's own files.)

A checkpoint is three files with one stem:

- ``<stem>.params``: ``net.save_parameters`` (loads with plain ``load_parameters``
  or :func:`gluon_asymmnet.load_checkpoint`);
- ``<stem>.states``: ``trainer.save_states`` (optimizer state and update count);
- ``<stem>.json``: what else a resumed run needs (epoch, data-stream position,
  best score so far, the validation history) and how the model was built.

Stems: ``<top1 %.4f>-<dataset>-<model>-<epoch>-best`` for a new best validation
top-1 (e.g. ``0.7542-imagenet-modifiedv3-358-best``, the released file) and
``<dataset>-<model>-<epoch>`` for periodic ones. Every file is written to a
temporary name in the same directory, flushed to disk and renamed over its
final name, and the ``.json`` is written last: a run killed at any moment
leaves either a complete checkpoint or none, never a truncated file.

What is read back, and trusted: the ``.json`` names its ``.params`` and
``.states`` by plain file names in its own folder (an absolute name or one
with ``..`` is refused before anything is read) and records their sha256.
The ``.states`` file is a Python pickle, which can run code when loaded: it
is read only when its hash is the one its ``.json`` records (or when the
user names it with ``--resume-states``), and then first by an unpickler that
builds nothing but what ``Trainer.save_states`` writes (MXNet optimizers and
learning-rate schedules, GluonCV's among them, and NDArrays from their bytes),
so even a crafted file with a matching ``.json`` runs no code. A ``.params``
given to ``--resume`` without its ``.json`` (a downloaded file) gives
weights only, never a pickle.

A resumed run continues its checkpoint's run only with the same settings
(:func:`run_settings`, :func:`data_signature`); a difference is refused,
naming each changed setting, unless the run accepts the changes (it is then
no longer a continuation, and says so).
"""
import dataclasses
import glob
import hashlib
import importlib
import io
import json
import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Optional

import mxnet as mx

from ..files import atomic_write, file_sha256, write_failure_reason
from .config import ConfigError, TrainConfig, flag_of

__all__ = ['best_stem', 'periodic_stem', 'run_folder', 'atomic_write', 'save_checkpoint', 'latest_checkpoint',
           'load_meta', 'MODEL_KEYS', 'FREE_SETTINGS', 'run_settings', 'data_signature', 'SaveError', 'ResumePoint',
           'resume_point', 'load_trainer_states', 'CheckpointWriter']

# Options that fix the network and the data: a checkpoint resumes only into the same ones (dropout may change).
MODEL_KEYS = ('model', 'width_scale', 'asymmrate', 'shuffle_group', 'corrected_first_block', 'classes', 'dataset')
# Settings a resumed run may change: where and how it runs, not what it computes. The data paths are
# compared through data_signature (moved data is the same data); num_epochs see run_settings.
FREE_SETTINGS = ('num_workers', 'max_image_pixels', 'mode', 'log_interval', 'save_dir', 'tag_name', 'save_frequency', 'resume',
                 'resume_params', 'resume_states', 'resume_epoch', 'resume_with_changes', 'logging_file', 'dry_run',
                 'num_epochs', 'rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'data_dir', 'image_folder')
_FLAGS = {f.name: flag_of(f)[0] for f in dataclasses.fields(TrainConfig)}


def best_stem(top1, dataset, model, epoch):
    """``0.7542-imagenet-modifiedv3-358-best``: the authors' name for a best checkpoint."""
    return '%.4f-%s-%s-%d-best' % (top1, dataset, model, epoch)


def periodic_stem(dataset, model, epoch):
    """``imagenet-asymmnet_large-9``: the authors' name for a periodic checkpoint."""
    return '%s-%s-%d' % (dataset, model, epoch)


def run_folder(save_dir, dataset, model, tag_name=None, resume=None, now=None):
    """Where a run writes: ``save_dir``, or with ``tag_name`` the authors' run folder.

    The authors' ``train.py`` writes to
    ``<save_dir>/<dataset>/<model>_<tag>_<MMDD-HHMMSS>`` (the start time), a new
    folder every launch. To resume (``resume='latest'``) the newest existing
    folder of that tag that holds a complete checkpoint is continued.
    """
    if not tag_name:
        return save_dir
    base = os.path.join(save_dir, dataset, '%s_%s_' % (model, tag_name))
    if resume == 'latest':
        found = [d for d in glob.glob(glob.escape(base) + '[0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9]')
                 if latest_checkpoint(d)]
        if found:
            return max(found, key=os.path.getmtime)
    return base + time.strftime('%m%d-%H%M%S', time.localtime(now))


def _write_json(obj):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1, sort_keys=True)
    return write


class SaveError(RuntimeError):
    """A checkpoint could not be written; the message names it, why (a full disk by name) and the last one kept."""


def save_checkpoint(save_dir, stem, net, trainer, meta, save_states=True):
    """Write ``<stem>.params``, ``<stem>.states`` and ``<stem>.json`` atomically, in that order.

    The ``.json`` records the sha256 of the other two. An earlier checkpoint
    of the same stem stops being one first (its ``.json`` is removed), and a
    failure part way (a full disk) removes what was written: no ``.params``
    is left without its ``.json``.

    Parameters
    ----------
    save_dir : str
        Output folder.
    stem : str
        From :func:`best_stem` or :func:`periodic_stem`.
    net : mxnet.gluon.Block
    trainer : mxnet.gluon.Trainer
    meta : dict
        JSON-serialisable resume information.
    save_states : bool
        False where the optimizer state lives on parameter servers
        (``dist_async``) and cannot be saved by a worker.

    Returns
    -------
    dict
        ``params``, ``states`` (or None) and ``meta`` paths.
    """
    base = os.path.join(save_dir, stem)
    paths = {'params': base + '.params', 'states': base + '.states' if save_states else None,
             'meta': base + '.json'}
    if os.path.exists(paths['meta']):
        os.remove(paths['meta'])
    try:
        atomic_write(paths['params'], net.save_parameters)
        if save_states:
            atomic_write(paths['states'], trainer.save_states)
        meta = dict(meta, params=os.path.basename(paths['params']),
                    states=os.path.basename(paths['states']) if save_states else None,
                    sha256={k: file_sha256(paths[k]) for k in ('params', 'states') if paths[k]})
        atomic_write(paths['meta'], _write_json(meta))
    except BaseException:
        for path in paths.values():
            if path and os.path.exists(path):
                os.remove(path)
        raise
    return paths


def _plain_name(name):
    """A file name without a folder: what a checkpoint's ``.json`` may name."""
    return isinstance(name, str) and name not in ('', '.', '..') and os.path.basename(name) == name and \
        '/' not in name and '\\' not in name and '\0' not in name


def load_meta(path):
    """Read a checkpoint's ``.json`` (given it or its ``.params``) and check the files it names.

    Before any other file is read, the names of ``params``, ``states`` and
    ``best_params`` must be plain file names (the files are in the
    ``.json``'s folder); then the files must exist and have the sha256 the
    ``.json`` records.

    Returns
    -------
    dict
        The saved information plus absolute ``params_path`` and ``states_path`` (or None).

    Raises
    ------
    ConfigError
        Naming the missing, unreadable, misnamed or changed file.
    """
    if path.endswith('.params'):
        path = path[:-len('.params')] + '.json'
    if not os.path.isfile(path):
        raise ConfigError('%s: no such checkpoint description; a checkpoint written by this trainer has '
                          '.params, .states and .json files with one name (for other parameter files use '
                          '--resume-params/--resume-states/--resume-epoch)' % path)
    try:
        with open(path) as f:
            meta = json.load(f)
        names = {key: meta.get(key) for key in ('params', 'states', 'best_params')}
        int(meta['epoch']), int(meta['num_update']), meta['params']
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError('%s: unreadable checkpoint description (%s)' % (path, err))
    for key, name in names.items():
        if name is not None and not _plain_name(name):
            raise ConfigError('%s: "%s" is %r; a checkpoint names its files by plain file names in its own folder, '
                              'so it is refused and nothing it names was read' % (path, key, name))
    folder = os.path.dirname(os.path.abspath(path))
    meta['params_path'] = os.path.join(folder, meta['params'])
    meta['states_path'] = os.path.join(folder, meta['states']) if meta.get('states') else None
    for key in ('params', 'states'):
        if meta[key + '_path'] and not os.path.isfile(meta[key + '_path']):
            raise ConfigError('%s: the checkpoint file %s is missing' % (path, meta[key + '_path']))
    recorded = meta.get('sha256') if isinstance(meta.get('sha256'), dict) else {}
    for key in ('params', 'states'):
        target = meta[key + '_path']
        if target is None:
            continue
        if not recorded.get(key):
            raise ConfigError('%s records no sha256 of %s (a checkpoint of an older release), and a .states pickle '
                              'is unpickled only with one; if the files are your own, continue with --resume-params '
                              '%s%s --resume-epoch %d' % (path, meta[key], meta['params_path'],
                                                          ' --resume-states %s' % meta['states_path']
                                                          if meta['states_path'] else '', int(meta['epoch']) + 1))
        if file_sha256(target) != recorded[key]:
            raise ConfigError('%s: %s is not the file this checkpoint wrote (its sha256 differs from the one '
                              'recorded); nothing was loaded' % (path, target))
    return meta


def latest_checkpoint(save_dir):
    """The ``.json`` of the newest complete checkpoint in ``save_dir`` (highest epoch), or None."""
    best = None
    for path in glob.glob(os.path.join(glob.escape(save_dir), '*.json')):
        try:
            with open(path) as f:
                meta = json.load(f)
            epoch = int(meta['epoch'])
            files = [meta['params']] + ([meta['states']] if meta.get('states') else [])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        # A misnamed file counts here, so that load_meta refuses it by name instead of resuming an older one.
        if not all(os.path.isfile(os.path.join(save_dir, f)) for f in files if isinstance(f, str)):
            continue
        if best is None or epoch > best[0]:
            best = (epoch, path)
    return best[1] if best else None


def _depends_on_length(cfg):
    """Whether the first epochs of a run change with ``num_epochs`` (the schedule or mixup's end follows it)."""
    return cfg.lr_mode not in ('step', 'constant') or cfg.mixup_off_epoch > 0


def run_settings(cfg):
    """The settings a resumed run must share with its checkpoint: ``field -> value``, as JSON stores them.

    Every field of :class:`TrainConfig` but :data:`FREE_SETTINGS`; ``num_epochs``
    too when the learning-rate schedule or mixup's end depends on it (a
    ``step`` or ``constant`` run extends without changing its first epochs).
    """
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in FREE_SETTINGS}
    if _depends_on_length(cfg):
        values['num_epochs'] = cfg.num_epochs
    return json.loads(json.dumps(values))


def data_signature(train_batches, val_batches=None):
    """What identifies a run's data, wherever it lies: images per split, and each RecordIO file's size.

    Returns ``{'train': {...}, 'val': {...}}``; each part has ``images``,
    ``bytes`` (RecordIO) and ``where`` (the path, for messages only).
    """
    def part(batches):
        if batches is None:
            return None
        source = getattr(batches, 'source', None)
        sig = {'images': len(source) if source is not None else int(batches.num_samples)}
        rec = getattr(source, 'rec', None)
        if rec:
            sig['bytes'], sig['where'] = os.path.getsize(rec), os.path.abspath(rec)
        elif getattr(source, 'root', None):
            sig['where'] = os.path.abspath(source.root)
        return sig
    return {'train': part(train_batches), 'val': part(val_batches)}


def _show(value):
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, (list, tuple)):
        return ','.join(str(v) for v in value)
    return 'none' if value is None else str(value)


def _show_data(sig):
    if not sig:
        return 'none'
    return '%d images%s%s' % (sig['images'], ', %d bytes' % sig['bytes'] if 'bytes' in sig else '',
                              ' in %s' % sig['where'] if sig.get('where') else '')


def _changes(saved, settings, data):
    """``['--lr 0.1 -> 0.2', ...]``: this run's settings and data against a checkpoint's ``config``."""
    changes = []
    old = saved.get('settings') or {}
    for key in sorted(set(old) & set(settings or {})):
        if old[key] != settings[key]:
            changes.append('%s %s -> %s' % (_FLAGS.get(key, key), _show(old[key]), _show(settings[key])))
    for split in ('train', 'val'):
        was, now = (saved.get('data') or {}).get(split), (data or {}).get(split)
        if not was or not now:
            continue
        if {k: v for k, v in was.items() if k != 'where'} != {k: v for k, v in now.items() if k != 'where'}:
            changes.append('%s data %s -> %s' % ('training' if split == 'train' else 'validation', _show_data(was),
                                                 _show_data(now)))
    return changes


@dataclass
class ResumePoint:
    """Where a run starts: epoch, update count, best so far, history, and the files to load."""
    epoch: int = 0
    num_update: int = 0
    best_top1: float = 0.0
    best_epoch: Optional[int] = None
    best_params: Optional[str] = None
    history: list = field(default_factory=list)
    params: Optional[str] = None   # parameters to load into the network
    states: Optional[str] = None   # optimizer states to load into the trainer
    states_sha256: Optional[str] = None   # what ``states`` must hash to (a checkpoint's record)
    checkpoint: bool = False       # from a checkpoint of this trainer (``--resume``)
    changes: list = field(default_factory=list)   # settings changed since the checkpoint (accepted)
    note: Optional[str] = None     # what the run log should say about this start


def resume_point(save_dir, resume, model_config, resume_params='', resume_states='', resume_epoch=0,
                 batches_in_epoch=None, settings=None, data=None, accept_changes=False):
    """Where the run starts.

    Parameters
    ----------
    save_dir : str
    resume : str or None
        ``'latest'`` (the newest checkpoint in ``save_dir``), a checkpoint's
        ``.params`` or ``.json``, or None to start from ``resume_epoch``. A
        ``.params`` without its ``.json`` gives its weights only (epoch 0, a
        new optimizer state; no pickle is read).
    model_config : dict
        The :data:`MODEL_KEYS` values of this run; a checkpoint must have been
        trained with the same.
    resume_params, resume_states, resume_epoch
        GluonCV's way: files to load and the epoch to start at (without ``resume``).
    batches_in_epoch : callable
        ``epoch -> batches``; counts the updates before ``resume_epoch``.
    settings, data : dict, optional
        This run's :func:`run_settings` and :func:`data_signature`, compared
        with the checkpoint's.
    accept_changes : bool
        Continue although they differ (``--resume-with-changes``).

    Returns
    -------
    ResumePoint

    Raises
    ------
    ConfigError
        No checkpoint to resume, one of another model (naming the key and
        both values), a refused checkpoint description (:func:`load_meta`), or
        changed settings not accepted (naming each, old -> new).
    """
    if resume is not None:
        if resume != 'latest' and resume.endswith('.params') and not os.path.isfile(resume[:-7] + '.json'):
            if not os.path.isfile(resume):
                raise ConfigError('--resume %s: no such file' % resume)
            return ResumePoint(params=resume, note=(
                '--resume %s: no %s beside it, so it is not a checkpoint of this trainer: only its weights are '
                'loaded, at epoch 0 with a new optimizer state (a .states file is unpickled only with the sha256 its '
                "run's .json records, or when named by --resume-states)" % (resume, resume[:-7] + '.json')))
        path = latest_checkpoint(save_dir) if resume == 'latest' else resume
        if path is None:
            raise ConfigError('--resume: no complete checkpoint (.params, .states and .json) in --save-dir %s'
                              % save_dir)
        meta = load_meta(path)
        saved = meta.get('config', {})
        for key in MODEL_KEYS:
            # None: the model takes no such argument (older runs recorded MobileNetV3's asymmrate anyway).
            if key in saved and model_config[key] is not None and saved[key] != model_config[key]:
                raise ConfigError('--resume %s: the checkpoint was trained with %s=%r, this run has %r'
                                  % (path, key, saved[key], model_config[key]))
        changes = _changes(saved, settings, data)
        if changes and not accept_changes:
            raise ConfigError('--resume %s: this run differs from the checkpoint\'s: %s; resumed so it would not '
                              'continue that run. Give the same settings, start a new run (another --save-dir), or '
                              'add --resume-with-changes to go on from its weights and optimizer state anyway'
                              % (path, '; '.join(changes)))
        note = None
        if changes:
            note = ('--resume-with-changes: %s; this run is no longer a continuation of %s (its results are not '
                    'those of an uninterrupted run)' % ('; '.join(changes), path))
        return ResumePoint(epoch=int(meta['epoch']) + 1, num_update=int(meta['num_update']),
                           best_top1=float(meta['best_top1']), best_epoch=meta.get('best_epoch'),
                           best_params=meta.get('best_params'), history=list(meta.get('history', [])),
                           params=meta['params_path'], states=meta['states_path'],
                           states_sha256=(meta.get('sha256') or {}).get('states'), checkpoint=True, changes=changes,
                           note=note)
    return ResumePoint(epoch=resume_epoch, num_update=sum(batches_in_epoch(e) for e in range(resume_epoch)),
                       params=resume_params or None, states=resume_states or None)


# What Trainer.save_states pickles: MXNet's optimizers and schedules (GluonCV's schedules derive from MXNet's).
_STATES_MODULES = ('mxnet.optimizer.optimizer', 'mxnet.lr_scheduler', 'gluoncv.utils.lr_scheduler')


def _ndarray_from_state(handle):
    # How NDArray.__reduce__ rebuilds an array (its bytes follow); a raw handle would be a wild pointer.
    if handle is not None:
        raise pickle.UnpicklingError('an NDArray made from a raw memory handle')
    return mx.nd.NDArray(None)


class _StatesUnpickler(pickle.Unpickler):
    """Builds only what ``Trainer.save_states`` writes; any other global is refused before it is called."""

    def find_class(self, module, name):
        if (module, name) == ('builtins', 'bytearray'):
            return bytearray
        if (module, name) == ('mxnet.ndarray.ndarray', 'NDArray'):
            return _ndarray_from_state
        if module in _STATES_MODULES:
            obj = getattr(importlib.import_module(module), name, None)
            if isinstance(obj, type) and issubclass(obj, (mx.optimizer.Optimizer, mx.lr_scheduler.LRScheduler)):
                return obj
        raise pickle.UnpicklingError('it calls %s.%s, which no optimizer state holds' % (module, name))


def load_trainer_states(trainer, path, sha256=None):
    """Load a ``.states`` pickle into ``trainer``: the one place one is unpickled (module notes).

    Parameters
    ----------
    trainer : mxnet.gluon.Trainer
    path : str
        The ``.states`` file: a checkpoint's (``sha256`` given) or one the
        user named (``--resume-states``).
    sha256 : str, optional
        The hash the checkpoint's ``.json`` recorded; checked right before
        the file is unpickled.

    Raises
    ------
    ConfigError
        Another file than the one recorded, a pickle of anything but an
        optimizer state (nothing of it was run), or one that does not load.
    """
    with open(path, 'rb') as f:
        data = f.read()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ConfigError('%s is not the optimizer state its checkpoint wrote (its sha256 differs from the one '
                          'recorded); it was not unpickled' % path)
    try:
        _StatesUnpickler(io.BytesIO(data)).load()
    except Exception as err:  # refused before any foreign callable ran, or not a pickle at all
        raise ConfigError('%s is not an optimizer state of a Trainer (%s); it was not loaded' % (path, err)) from None
    try:
        trainer.load_states(path)
    except Exception as err:  # a foreign or truncated pickle: name the file
        raise ConfigError('cannot load optimizer states %s: %s' % (path, err))


class CheckpointWriter:
    """Writes a run's checkpoints after each epoch and remembers the best and the last one written.

    A checkpoint is written at every new best validation top-1, after the
    last epoch (with ``save_frequency`` 0, "only best and last", unless that
    epoch was just saved as the best), every ``save_frequency`` epochs, and
    for an epoch whose validation failed.

    Parameters
    ----------
    save_dir, dataset, model : str
        Where, and the names in the stems.
    num_epochs, save_frequency : int
    config : dict
        Saved with every checkpoint (``MODEL_KEYS`` values and more).
    save_states : bool
        False where the optimizer state lives on the servers (``dist_async``).
    start : ResumePoint
        Best so far; its checkpoint counts as the last written when resuming.
    """

    def __init__(self, save_dir, dataset, model, num_epochs, save_frequency, config, save_states, start):
        self.save_dir, self.dataset, self.model = save_dir, dataset, model
        self.num_epochs, self.save_frequency = num_epochs, save_frequency
        self.config, self.save_states = config, save_states
        self.best_top1, self.best_epoch, self.best_params = start.best_top1, start.best_epoch, start.best_params
        self.last = start.params if start.checkpoint else None

    def _best(self):
        return dict(best_top1=self.best_top1, best_epoch=self.best_epoch, best_params=self.best_params)

    def _save(self, stem, epoch, net, trainer, meta):
        try:
            self.last = save_checkpoint(self.save_dir, stem, net, trainer, dict(meta, **self._best()),
                                        self.save_states)['params']
            return self.last
        except (OSError, mx.base.MXNetError) as err:
            raise SaveError('cannot save the checkpoint of epoch %d as %s: %s; free space or give another '
                            '--save-dir, then continue with --resume (last complete checkpoint: %s)'
                            % (epoch, os.path.join(self.save_dir, stem),
                               write_failure_reason(err, os.path.abspath(self.save_dir)), self.last or 'none')) \
                from None

    def after_epoch(self, epoch, top1, net, trainer, num_update, history, validated=True):
        """Write what epoch ``epoch`` calls for; return the ``.params`` paths written.

        ``validated=False``: the epoch's validation failed; it is saved (as a
        periodic checkpoint) all the same.
        """
        meta = dict(epoch=epoch, num_update=num_update, history=history, config=self.config)
        written = []
        if validated and top1 > self.best_top1:
            stem = best_stem(top1, self.dataset, self.model, epoch)
            self.best_top1, self.best_epoch, self.best_params = top1, epoch, stem + '.params'
            written.append(self._save(stem, epoch, net, trainer, meta))
        periodic = self.save_frequency and (epoch + 1) % self.save_frequency == 0
        last = epoch == self.num_epochs - 1 and (self.save_frequency or not written)
        if periodic or last or not validated:
            written.append(self._save(periodic_stem(self.dataset, self.model, epoch), epoch, net, trainer, meta))
        return written
