"""Checkpoints named as the authors named them, written atomically, and found again to resume.

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

from .options import ConfigError

__all__ = ['best_stem', 'periodic_stem', 'atomic_write', 'save_checkpoint', 'latest_checkpoint',
           'load_meta', 'MODEL_KEYS']

# Options that fix the network's shape: a checkpoint resumes only into the same ones.
MODEL_KEYS = ('model', 'width_scale', 'asymmrate', 'shuffle_group', 'classes', 'dataset')


def best_stem(top1, dataset, model, epoch):
    """``0.7542-imagenet-modifiedv3-358-best``: the authors' name for a best checkpoint."""
    return '%.4f-%s-%s-%d-best' % (top1, dataset, model, epoch)


def periodic_stem(dataset, model, epoch):
    """``imagenet-asymmnet_large-9``: the authors' name for a periodic checkpoint."""
    return '%s-%s-%d' % (dataset, model, epoch)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Create ``path`` through ``write(tmp_path)`` so that it appears complete or not at all.

    Parameters
    ----------
    path : str
        Final file name.
    write : callable
        Writes the whole file to the path it is given.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, '.%s.tmp-%d' % (os.path.basename(path), os.getpid()))
    try:
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_dir(folder)


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
