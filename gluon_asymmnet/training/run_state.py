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

from ..data.fingerprint import content_fingerprint
from ..files import atomic_write, file_sha256, write_failure_reason
from ..model_flags import network_dests
from .config import ConfigError, TrainConfig, flag_of
from .run_record import RecordError, check_record, checkpoint_stem_epoch, plain_name

__all__ = ['best_stem', 'periodic_stem', 'run_folder', 'atomic_write', 'save_checkpoint', 'latest_checkpoint',
           'load_meta', 'MODEL_KEYS', 'FREE_SETTINGS', 'run_settings', 'data_signature', 'SaveError', 'ResumePoint',
           'resume_point', 'load_trainer_states', 'CheckpointWriter', 'run_in_folder', 'remove_run',
           'clean_interrupted_saves', 'weights_only']

# Options that fix the network and the data: a checkpoint resumes only into the same ones (dropout may change).
MODEL_KEYS = network_dests() + ('dataset',)
# Settings a resumed run may change: where and how it runs, not what it computes. The data paths are
# compared through data_signature (moved data is the same data); num_epochs see run_settings.
FREE_SETTINGS = ('num_workers', 'max_image_pixels', 'mode', 'log_interval', 'save_dir', 'tag_name', 'overwrite',
                 'save_frequency', 'resume', 'resume_params', 'resume_states', 'resume_epoch', 'resume_with_changes',
                 'logging_file', 'dry_run', 'num_epochs', 'rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx',
                 'data_dir', 'image_folder')
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
            json.dump(obj, f, indent=1, sort_keys=True, allow_nan=False)  # NaN is not JSON
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
    marker = _saving_marker(save_dir, stem)
    try:
        with open(marker, 'w'):
            pass
        if os.path.exists(paths['meta']):
            os.remove(paths['meta'])
        atomic_write(paths['params'], net.save_parameters)
        if save_states:
            atomic_write(paths['states'], trainer.save_states)
        meta = dict(meta, params=os.path.basename(paths['params']),
                    states=os.path.basename(paths['states']) if save_states else None,
                    sha256={k: file_sha256(paths[k]) for k in ('params', 'states') if paths[k]})
        atomic_write(paths['meta'], _write_json(meta))
    except BaseException:  # a full disk, or Ctrl-C / SIGTERM (.interrupts): no part of it is left
        for path in list(paths.values()) + [marker]:
            if path and os.path.exists(path):
                os.remove(path)
        raise
    os.remove(marker)
    return paths


def _saving_marker(save_dir, stem):
    """The file that says a checkpoint is being written: what a SIGKILL leaves beside its parts."""
    return os.path.join(save_dir, '.%s.saving' % stem)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def clean_interrupted_saves(save_dir):
    """Remove what a killed run left of a checkpoint it was writing; the paths removed.

    Temporary files of :func:`gluon_asymmnet.files.atomic_write` whose process
    is gone, and the ``.params``/``.states`` of a checkpoint whose writing
    began (its marker) but whose ``.json`` was never written: without a
    ``.json`` they are no checkpoint, and a user could take them for one.
    Called with the run folder held (:class:`~gluon_asymmnet.training.run_lock.RunLock`).
    """
    removed = []
    for path in glob.glob(os.path.join(glob.escape(save_dir), '.*.tmp-*')):
        pid = path.rsplit('.tmp-', 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    for marker in glob.glob(os.path.join(glob.escape(save_dir), '.*.saving')):
        stem = os.path.basename(marker)[1:-len('.saving')]
        if not os.path.isfile(os.path.join(save_dir, stem + '.json')):
            for ext in ('.params', '.states'):
                part = os.path.join(save_dir, stem + ext)
                if os.path.isfile(part):
                    os.remove(part)
                    removed.append(part)
        os.remove(marker)
    return removed


def weights_only(resume):
    """Whether ``--resume`` names a ``.params`` without its checkpoint's ``.json``: weights for a new run."""
    return resume not in (None, 'latest') and resume.endswith('.params') and not os.path.isfile(_record_path(resume))


def _record_path(path):
    """A checkpoint's ``.json``, given it or its ``.params``."""
    return path[:-len('.params')] + '.json' if path.endswith('.params') else path


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
    path = _record_path(path)
    if not os.path.isfile(path):
        raise ConfigError('%s: no such checkpoint description; a checkpoint written by this trainer has '
                          '.params, .states and .json files with one name (for other parameter files use '
                          '--resume-params/--resume-states/--resume-epoch)' % path)
    meta = _read_record(path)
    for key in ('params', 'states', 'best_params'):
        name = meta.get(key)
        if name is not None and not plain_name(name):
            raise ConfigError('%s: "%s" is %r; a checkpoint names its files by plain file names in its own folder, '
                              'so it is refused and nothing it names was read' % (path, key, name))
    try:
        check_record(meta)
    except RecordError as err:
        raise ConfigError('%s: not a checkpoint record this trainer wrote: %s; it is refused and nothing it names '
                          'was read' % (path, err)) from None
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


def _read_record(path):
    """A checkpoint's ``.json`` as a dict: ``ConfigError`` naming the file when it is no JSON object."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
        if not data.strip():
            raise ValueError('the file is empty')
        meta = json.loads(data.decode('utf-8'), parse_constant=_refuse_constant)
    except (OSError, ValueError) as err:
        raise ConfigError('%s: damaged checkpoint description (%s); it is refused and nothing it names was read'
                          % (path, err)) from None
    if not isinstance(meta, dict):
        raise ConfigError('%s: damaged checkpoint description (it holds %s, not an object); it is refused and '
                          'nothing it names was read' % (path, 'null' if meta is None else type(meta).__name__))
    return meta


def _refuse_constant(name):
    raise ValueError('%s is not JSON' % name)


def _checkpoint_records(save_dir):
    """``(epoch, path, sound)`` of every checkpoint description in ``save_dir``.

    A ``.json`` counts when its name is a checkpoint's (its epoch read from
    the name when the file cannot be read) or when it reads as an object with
    an ``epoch`` and ``params``; ``sound``: it fits the schema.
    """
    found = []
    for path in glob.glob(os.path.join(glob.escape(save_dir), '*.json')):
        named = checkpoint_stem_epoch(path)
        try:
            with open(path) as f:
                meta = json.load(f)
            check_record(meta)
            found.append((meta['epoch'], path, True))
        except (OSError, ValueError, UnicodeDecodeError):  # RecordError is a ValueError
            if named is not None:
                found.append((named, path, False))
    return found


def latest_checkpoint(save_dir):
    """The ``.json`` of the newest checkpoint in ``save_dir`` (highest epoch), or None.

    The newest counts even when it is damaged or incomplete (its epoch then
    comes from its name): :func:`load_meta` refuses it by name, where skipping
    it would resume an older one (or none) without a word.
    """
    found = _checkpoint_records(save_dir)
    if not found:
        return None
    # At one epoch (a best and a periodic checkpoint), a damaged record is the one named.
    return max(found, key=lambda r: (r[0], not r[2], r[1]))[1]


def run_in_folder(save_dir):
    """A one-line description of the run whose checkpoints ``save_dir`` holds, or None when it holds none."""
    found = _checkpoint_records(save_dir) if os.path.isdir(save_dir) else []
    if not found:
        return None
    epoch, path, sound = max(found, key=lambda r: (r[0], r[2], r[1]))
    what = ''
    if sound:
        with open(path) as f:
            config = json.load(f).get('config') or {}
        if config.get('model'):
            what = '%s on %s, ' % (config['model'], config.get('dataset', '?'))
    return '%s%d checkpoint(s), the newest of epoch %d: %s, written %s' % (
        what, len(found), epoch, path, time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(path))))


def remove_run(save_dir):
    """Remove the checkpoints in ``save_dir`` (each description first, then the files it names); their paths."""
    removed = []
    for _, path, sound in _checkpoint_records(save_dir):
        stem = os.path.splitext(path)[0]
        names = [stem + '.params', stem + '.states']
        if sound:
            with open(path) as f:
                meta = json.load(f)
            names += [os.path.join(save_dir, meta[k]) for k in ('params', 'states') if meta.get(k)]
        for target in [path] + sorted(set(names)):
            if os.path.isfile(target):
                os.remove(target)
                removed.append(target)
    return removed


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
    """What identifies a run's data, wherever it lies: images per split, each RecordIO file's size, the content.

    Returns ``{'train': {...}, 'val': {...}}``; each part has ``images``,
    ``bytes`` (RecordIO), ``content`` (:func:`~gluon_asymmnet.data.fingerprint.content_fingerprint`:
    every image's size, the ``.idx``, sampled bytes) and ``where`` (the path, for messages only).
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
        content = content_fingerprint(source) if source is not None else None
        if content:
            sig['content'] = content
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
    return '%d images%s%s%s' % (sig['images'], ', %d bytes' % sig['bytes'] if 'bytes' in sig else '',
                                ', content %s' % sig['content'] if 'content' in sig else '',
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
        # What both record (a checkpoint of an older release has no content fingerprint).
        if any(was[k] != now[k] for k in set(was) & set(now) - {'where'}):
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


def resume_point(save_dir, resume, model_config, *, resume_params='', resume_states='', resume_epoch=0,
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
        if weights_only(resume):
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
        try:
            meta = load_meta(path)
        except ConfigError as err:
            if resume != 'latest':
                raise
            raise ConfigError('--resume: the newest checkpoint in --save-dir %s is refused (move it away to resume '
                              'from the one before it, or name one with --resume FILE): %s' % (save_dir, err)) \
                from None
        folder = os.path.dirname(os.path.abspath(_record_path(path)))
        best = dict(best_top1=float(meta['best_top1']), best_epoch=meta.get('best_epoch'),
                    best_params=meta.get('best_params'))
        notes = []
        if folder != os.path.abspath(save_dir):
            # Its best checkpoint stays in its folder: this folder's best is counted anew (a checkpoint names
            # files of its own folder only).
            if best['best_params']:
                notes.append('--resume %s: the run continues in --save-dir %s, away from its folder %s; its best '
                             'checkpoint so far (%s, top-1 %.4f at epoch %s) stays there, and the best of this '
                             'folder is counted from epoch %d' % (resume, save_dir, folder,
                                                                  os.path.join(folder, best['best_params']),
                                                                  best['best_top1'], best['best_epoch'],
                                                                  int(meta['epoch']) + 1))
            best = dict(best_top1=0.0, best_epoch=None, best_params=None)
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
        if changes:
            notes.append('--resume-with-changes: %s; this run is no longer a continuation of %s (its results are '
                         'not those of an uninterrupted run)' % ('; '.join(changes), path))
        note = '; '.join(notes) or None
        return ResumePoint(epoch=int(meta['epoch']) + 1, num_update=int(meta['num_update']),
                           history=list(meta.get('history', [])), **best,
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
