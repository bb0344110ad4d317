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
"""
import glob
import json
import os
import time
from dataclasses import dataclass, field
from typing import Optional

from ..files import atomic_write
from .config import ConfigError

__all__ = ['best_stem', 'periodic_stem', 'run_folder', 'atomic_write', 'save_checkpoint', 'latest_checkpoint',
           'load_meta', 'MODEL_KEYS', 'ResumePoint', 'resume_point', 'CheckpointWriter']

# Options that fix the network's shape: a checkpoint resumes only into the same ones.
MODEL_KEYS = ('model', 'width_scale', 'asymmrate', 'shuffle_group', 'classes', 'dataset')


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


def save_checkpoint(save_dir, stem, net, trainer, meta, save_states=True):
    """Write ``<stem>.params``, ``<stem>.states`` and ``<stem>.json`` atomically, in that order.

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
    atomic_write(paths['params'], net.save_parameters)
    if save_states:
        atomic_write(paths['states'], trainer.save_states)
    meta = dict(meta, params=os.path.basename(paths['params']),
                states=os.path.basename(paths['states']) if save_states else None)
    atomic_write(paths['meta'], _write_json(meta))
    return paths


def load_meta(path):
    """Read a checkpoint's ``.json`` (given it or its ``.params``) and check its files exist.

    Returns
    -------
    dict
        The saved information plus absolute ``params_path`` and ``states_path`` (or None).

    Raises
    ------
    ConfigError
        Naming the missing or unreadable file.
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
        folder = os.path.dirname(os.path.abspath(path))
        meta['params_path'] = os.path.join(folder, meta['params'])
        meta['states_path'] = os.path.join(folder, meta['states']) if meta.get('states') else None
        int(meta['epoch']), int(meta['num_update'])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError('%s: unreadable checkpoint description (%s)' % (path, err))
    for key in ('params_path', 'states_path'):
        if meta[key] and not os.path.isfile(meta[key]):
            raise ConfigError('%s: the checkpoint file %s is missing' % (path, meta[key]))
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
        if not all(os.path.isfile(os.path.join(save_dir, f)) for f in files):
            continue
        if best is None or epoch > best[0]:
            best = (epoch, path)
    return best[1] if best else None


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
    checkpoint: bool = False       # from a checkpoint of this trainer (``--resume``)


def resume_point(save_dir, resume, model_config, resume_params='', resume_states='', resume_epoch=0,
                 batches_in_epoch=None):
    """Where the run starts.

    Parameters
    ----------
    save_dir : str
    resume : str or None
        ``'latest'`` (the newest checkpoint in ``save_dir``), a checkpoint's
        ``.params`` or ``.json``, or None to start from ``resume_epoch``.
    model_config : dict
        The :data:`MODEL_KEYS` values of this run; a checkpoint must have been
        trained with the same.
    resume_params, resume_states, resume_epoch
        GluonCV's way: files to load and the epoch to start at (without ``resume``).
    batches_in_epoch : callable
        ``epoch -> batches``; counts the updates before ``resume_epoch``.

    Returns
    -------
    ResumePoint

    Raises
    ------
    ConfigError
        No checkpoint to resume, or one of another model (naming the key and both values).
    """
    if resume is not None:
        path = latest_checkpoint(save_dir) if resume == 'latest' else resume
        if path is None:
            raise ConfigError('--resume: no complete checkpoint (.params, .states and .json) in --save-dir %s'
                              % save_dir)
        meta = load_meta(path)
        saved = meta.get('config', {})
        for key in MODEL_KEYS:
            if key in saved and saved[key] != model_config[key]:
                raise ConfigError('--resume %s: the checkpoint was trained with %s=%r, this run has %r'
                                  % (path, key, saved[key], model_config[key]))
        return ResumePoint(epoch=int(meta['epoch']) + 1, num_update=int(meta['num_update']),
                           best_top1=float(meta['best_top1']), best_epoch=meta.get('best_epoch'),
                           best_params=meta.get('best_params'), history=list(meta.get('history', [])),
                           params=meta['params_path'], states=meta['states_path'], checkpoint=True)
    return ResumePoint(epoch=resume_epoch, num_update=sum(batches_in_epoch(e) for e in range(resume_epoch)),
                       params=resume_params or None, states=resume_states or None)


class CheckpointWriter:
    """Writes a run's checkpoints after each epoch and remembers the best and the last one written.

    A checkpoint is written at every new best validation top-1 and, with
    ``save_frequency`` > 0, every ``save_frequency`` epochs and after the last.

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

    def after_epoch(self, epoch, top1, net, trainer, num_update, history):
        """Write what epoch ``epoch`` calls for; return the ``.params`` paths written."""
        meta = dict(epoch=epoch, num_update=num_update, history=history, config=self.config)
        written = []
        if top1 > self.best_top1:
            stem = best_stem(top1, self.dataset, self.model, epoch)
            self.best_top1, self.best_epoch, self.best_params = top1, epoch, stem + '.params'
            written.append(save_checkpoint(self.save_dir, stem, net, trainer, dict(meta, **self._best()),
                                           self.save_states)['params'])
        if self.save_frequency and ((epoch + 1) % self.save_frequency == 0 or epoch == self.num_epochs - 1):
            stem = periodic_stem(self.dataset, self.model, epoch)
            written.append(save_checkpoint(self.save_dir, stem, net, trainer, dict(meta, **self._best()),
                                           self.save_states)['params'])
        if written:
            self.last = written[-1]
        return written
