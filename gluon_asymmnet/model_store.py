"""The model store: published weights by name, verified by hash, cached on disk.

In GluonCV's manner: files live in ``root`` (default ``~/.mxnet/models``, or
``$MXNET_HOME/models`` when ``MXNET_HOME`` is set), are checked against their
hash every time they are used, and are downloaded when missing or damaged.
The entries are data, kept beside the models in ``pretrained.json``: name,
model and constructor arguments, file name, hash, source URL, published
top-1/top-5, and (``preprocess``, optional) where the weights' preprocessing
differs from the model's (:class:`~gluon_asymmnet.preprocessing.PreprocessConfig`
fields, e.g. ``{"crop_ratio": 0.9}``).

Downloads are safe to run concurrently (threads or processes): one holds a
lock file (``<file>.lock``) while it fetches into a temporary file in the same
folder, verifies the hash and renames it into place atomically, so the final
name only ever holds a complete, verified file; the others wait for the lock
and then find the file. A download whose hash does not match is deleted.
A download is limited in size (:func:`size_limit`, from the entry's model)
and must keep moving (64 KiB every ``stall_timeout`` seconds); its temporary
file is removed on every exit, and one left by a killed process is removed by
the next download of the file. When the source cannot be reached,
:class:`ModelStoreError` says where to put
the file by hand and which hash it must have; a store folder that cannot be
written (read-only, not a folder, a full disk) is named as such, with what
to do instead. Files are created with the process's umask, like any other
file, so a shared ``MXNET_HOME`` works for every account the umask admits.

As in GluonCV, ``MXNET_GLUON_REPO`` points downloads at a mirror: an entry's
file is then fetched from ``$MXNET_GLUON_REPO/gluon/models/<name>``, where
``<name>`` is the last part of its URL (GluonCV's mirror layout; a local
folder works too).

The store only serves ``.params`` files (NDArray lists, parsed without
pickle). Trainer ``.states`` files are Python pickles, which can run arbitrary
code when loaded: this library never loads one that came from the store or a
URL, and :func:`register` refuses entries for them.
"""
import contextlib
import errno
import glob
import hashlib
import json
import logging
import math
import os
import posixpath
import re
import secrets
import signal
import threading
import time
import zipfile
from collections import OrderedDict, namedtuple
from urllib.parse import urlparse
from urllib.request import url2pathname

import filelock
import requests
import urllib3

from .home import mxnet_home
from .layouts import LAYOUTS
from .preprocessing import IMAGENET
from .registry import get_model_spec

__all__ = ['DEFAULT_ROOT', 'ModelStoreError', 'StoreEntry', 'resolve_root', 'file_hash',
           'pretrained_entries', 'pretrained_model_list', 'register', 'unregister', 'find_entry',
           'source_url', 'size_limit', 'get_model_file']

log = logging.getLogger(__name__)

DEFAULT_ROOT = os.path.join('~', '.mxnet', 'models')
HASH_TYPES = ('sha1', 'git-blob')
_CHUNK = 1 << 20


class ModelStoreError(OSError):
    """A store file that cannot be fetched or does not have its published hash."""


class StoreEntry(namedtuple('StoreEntry', 'name model kwargs file_name hash hash_type url archive '
                                          'layout top1 top5 source preprocess')):
    """One published parameter file (fields as in ``pretrained.json``).

    ``hash_type`` is ``'sha1'`` (of the file) or ``'git-blob'``
    (``sha1(b"blob <size>\\0" + bytes)``, what ``git hash-object`` prints);
    ``archive`` is ``None`` or ``'zip'`` (the URL serves a zip that holds
    ``file_name``); ``preprocess`` holds the preprocessing fields in which
    the weights differ from their model's (``{}``: none).
    """

    @classmethod
    def from_dict(cls, d):
        """Build and validate an entry from a mapping."""
        d = dict(d)
        d.setdefault('archive', None)
        d.setdefault('layout', None)
        d.setdefault('top1', None)
        d.setdefault('top5', None)
        d.setdefault('source', '')
        d.setdefault('kwargs', {})
        d.setdefault('preprocess', {})
        unknown = set(d) - set(cls._fields)
        missing = set(cls._fields) - set(d)
        if unknown or missing:
            raise ValueError('store entry %r: unknown fields %s, missing fields %s'
                             % (d.get('name'), sorted(unknown), sorted(missing)))
        name, file_name = d['name'], d['file_name']
        if file_name.endswith('.states'):
            raise ValueError('store entry %r: %s is a Trainer .states file, a Python pickle; '
                             'the store never serves pickles' % (name, file_name))
        if not file_name.endswith('.params') or os.path.basename(file_name) != file_name:
            raise ValueError('store entry %r: file_name must be a plain *.params name, got %r' % (name, file_name))
        if not re.fullmatch('[0-9a-f]{40}', d['hash']):
            raise ValueError('store entry %r: hash must be 40 lower-case hex digits, got %r' % (name, d['hash']))
        if d['hash_type'] not in HASH_TYPES:
            raise ValueError('store entry %r: hash_type must be one of %s, got %r'
                             % (name, ', '.join(HASH_TYPES), d['hash_type']))
        if d['archive'] not in (None, 'zip'):
            raise ValueError('store entry %r: archive must be null or "zip", got %r' % (name, d['archive']))
        if d['layout'] is not None and d['layout'] not in LAYOUTS:
            raise ValueError('store entry %r: unknown layout %r' % (name, d['layout']))
        d['kwargs'] = dict(d['kwargs'])
        d['preprocess'] = dict(d['preprocess'])
        try:
            IMAGENET.replace(**d['preprocess'])
        except (TypeError, ValueError) as err:
            raise ValueError('store entry %r: preprocess: %s' % (name, err)) from None
        return cls(**d)

    @property
    def short_hash(self):
        return self.hash[:8]

    def describe(self):
        args = ', '.join('%s=%r' % kv for kv in sorted(self.kwargs.items()))
        return '%s [%s] %s(%s)' % (self.name, self.short_hash, self.model, args)


def _load_entries():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pretrained.json')) as f:
        data = json.load(f)
    return OrderedDict((e['name'], StoreEntry.from_dict(e)) for e in data['entries'])


_ENTRIES = _load_entries()


def pretrained_entries():
    """All store entries, in registration order."""
    return list(_ENTRIES.values())


def pretrained_model_list():
    """Model names with at least one store entry."""
    return sorted({e.model for e in _ENTRIES.values()})


def register(entry, replace=False):
    """Add a store entry (a :class:`StoreEntry` or a mapping with its fields).

    Parameters
    ----------
    entry : StoreEntry or dict
    replace : bool
        Allow replacing an entry of the same name.

    Returns
    -------
    StoreEntry
    """
    entry = entry if isinstance(entry, StoreEntry) else StoreEntry.from_dict(entry)
    if entry.name in _ENTRIES and not replace:
        raise ValueError('store entry %r exists; pass replace=True to replace it' % entry.name)
    _ENTRIES[entry.name] = entry
    return entry


def unregister(name):
    """Remove a store entry by name."""
    if name not in _ENTRIES:
        raise ValueError('no store entry %r' % name)
    del _ENTRIES[name]


def find_entry(model, config=None, tag=None, ignore=()):
    """The store entry for a model, its configuration and an optional hash prefix.

    Parameters
    ----------
    model : str
        Model name (``asymmnet_large``...).
    config : dict, optional
        The network's configuration (``multiplier``, ``asymmrate``...); every
        argument the entry was published with must be equal.
    tag : str, optional
        A prefix of the entry's hash.
    ignore : sequence of str
        Arguments not compared (``classes`` when fine-tuning on other classes);
        an entry equal in them too is preferred.

    Returns
    -------
    StoreEntry
    """
    known = [e for e in _ENTRIES.values() if e.model == model]
    if not known:
        raise ValueError('no pretrained weights for %s; models with weights: %s'
                         % (model, ', '.join(pretrained_model_list())))
    listing = '; '.join(e.describe() for e in known)
    found = known
    if tag is not None:
        found = [e for e in found if e.hash.startswith(tag.lower())]
        if not found:
            raise ValueError('no pretrained weights for %s with a hash starting %r; available: %s'
                             % (model, tag, listing))
    if config is not None:
        found = [e for e in found if all(k in config and config[k] == v for k, v in e.kwargs.items()
                                         if k not in ignore)]
        if not found:
            asked = ', '.join('%s=%r' % kv for kv in sorted(config.items()))
            raise ValueError('no pretrained weights for %s(%s)%s; available: %s'
                             % (model, asked, ' with hash %r' % tag if tag else '', listing))
        # An entry equal in the ignored arguments too (its classifier fits) comes first.
        found.sort(key=lambda e: not all(k in config and config[k] == v for k, v in e.kwargs.items() if k in ignore))
    return found[0]


def resolve_root(root=DEFAULT_ROOT):
    """The store folder: ``$MXNET_HOME/models`` when ``MXNET_HOME`` is set and ``root`` is the default."""
    if root is None or root == DEFAULT_ROOT:
        return mxnet_home('models')
    return os.path.expanduser(root)


def file_hash(path, hash_type='sha1'):
    """The hex sha1 of a file (``'sha1'``), or its git blob id (``'git-blob'``)."""
    if hash_type not in HASH_TYPES:
        raise ValueError('hash_type must be one of %s, got %r' % (', '.join(HASH_TYPES), hash_type))
    h = hashlib.sha1()
    if hash_type == 'git-blob':
        h.update(b'blob %d\0' % os.path.getsize(path))
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            h.update(chunk)
    return h.hexdigest()


_HASH_NAMES = {'sha1': 'sha1', 'git-blob': 'git blob id'}


def _how_to_check(entry):
    return 'git hash-object' if entry.hash_type == 'git-blob' else 'sha1sum'


def _check_repo(repo):
    """Refuse a ``MXNET_GLUON_REPO`` that is neither an http(s)/file URL nor a folder path, naming the variable."""
    try:
        parsed = urlparse(repo)
        parsed.port  # noqa: B018 (parses the port: ValueError when it is not a number)
    except ValueError as err:
        problem = str(err)
    else:
        if parsed.scheme in ('http', 'https'):
            problem = None if parsed.netloc else 'no host'
        elif parsed.scheme in ('', 'file') or os.path.isabs(repo):
            problem = None
        else:
            problem = 'unknown scheme %r' % parsed.scheme
    if problem:
        raise ModelStoreError('the environment variable MXNET_GLUON_REPO=%r is not a mirror URL (%s); unset it, '
                              'or give an http(s):// URL or a folder' % (repo, problem))


def source_url(entry):
    """Where ``entry`` is downloaded from: its URL, or its file on the ``MXNET_GLUON_REPO`` mirror.

    Raises
    ------
    ModelStoreError
        ``MXNET_GLUON_REPO`` is set but is not a URL or folder (the message names the variable).
    """
    repo = os.environ.get('MXNET_GLUON_REPO')
    if not repo:
        return entry.url
    _check_repo(repo)
    name = posixpath.basename(urlparse(entry.url).path) or entry.file_name
    return repo.rstrip('/') + '/gluon/models/' + name


def _offline_message(entry, url, path, reason):
    unpack = ' (the URL serves a zip archive: unpack %s from it)' % entry.file_name if entry.archive else ''
    mirror = ' (the MXNET_GLUON_REPO mirror of %s)' % entry.url if url != entry.url else ''
    return ('cannot fetch %s for %s from %s%s: %s. Without network access, download it elsewhere%s and put it '
            'at %s (the store folder is root=, or $MXNET_HOME/models when MXNET_HOME is set); its %s must be '
            '%s (check with `%s %s`).'
            % (entry.file_name, entry.name, url, mirror, reason, unpack, path, _HASH_NAMES[entry.hash_type],
               entry.hash, _how_to_check(entry), path))


def _umask():
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _store_failure(entry, path, err):
    """A ModelStoreError for a store folder that cannot take the file, with the advice that fits."""
    folder = os.path.dirname(path)
    code = getattr(err, 'errno', None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        why, advice = 'the disk holding %s is full' % folder, 'free some space there'
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = 'the store folder %s is not writable (%s)' % (folder, os.strerror(code))
        advice = 'or have its owner put the file at %s (%s %s)' % (path, _HASH_NAMES[entry.hash_type], entry.hash)
    else:
        why, advice = 'writing in %s failed: %s' % (folder, err.strerror or err), 'check that folder'
    return ModelStoreError('cannot store %s for %s: %s; nothing was stored. Point root= (or MXNET_HOME) at another '
                           'folder, %s.' % (entry.file_name, entry.name, why,
                                            advice if advice.startswith('or ') else 'or ' + advice))


def _new_part(entry, folder):
    """A new, empty temporary file beside the final one, created with the umask's permissions."""
    part = os.path.join(folder, '%s.part-%s' % (entry.file_name, secrets.token_hex(6)))
    return os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), part


class _StoreWrite(Exception):
    """A failed write into the store folder (kept apart from failures to read the source)."""

    def __init__(self, err):
        super().__init__(err)
        self.err = err


def _write(out, chunk):
    try:
        out.write(chunk)
    except OSError as err:
        raise _StoreWrite(err) from None


_SIZES = {}
# A download must bring at least this many bytes in every stall_timeout seconds.
_MIN_PROGRESS = 64 << 10


def size_limit(entry):
    """The most bytes ``entry``'s file (or its zip) can take: its model's parameters as float32, with room.

    An MXNet parameter file holds each array's values and a header and name
    of well under 512 bytes; the limit is 1.5 times that, plus 1 MiB.
    """
    key = (entry.model, tuple(sorted(entry.kwargs.items())))
    if key not in _SIZES:
        params = list(get_model_spec(entry.model).build(**entry.kwargs).collect_params().values())
        values = sum(math.prod(p.shape) for p in params)
        _SIZES[key] = (int(1.5 * (4 * values + 512 * len(params))) + (1 << 20), values)
    return _SIZES[key]


class _Progress(object):
    """Counts the bytes of a download: more than ``limit`` or a stall is a ModelStoreError."""

    def __init__(self, entry, url, path, stall_timeout):
        self.entry, self.url, self.path, self.stall_timeout = entry, url, path, stall_timeout
        self.limit, self.values = size_limit(entry)
        self.total = self.mark_total = 0
        self.mark = time.monotonic()

    def too_big(self, size):
        return ModelStoreError('%s: %s %s %d bytes, more than a parameter file of %s(%s) can hold (%d values: at '
                               'most %d bytes); it is not the entry\'s file, and nothing was stored'
                               % (self.entry.name, self.url, 'announces' if size is not None else 'sent more than',
                                  size if size is not None else self.limit, self.entry.model,
                                  ', '.join('%s=%r' % kv for kv in sorted(self.entry.kwargs.items())), self.values,
                                  self.limit))

    def add(self, n):
        self.total += n
        if self.total > self.limit:
            raise self.too_big(None)
        now = time.monotonic()
        if now - self.mark >= self.stall_timeout:
            if self.total - self.mark_total < _MIN_PROGRESS:
                raise ModelStoreError(_offline_message(
                    self.entry, self.url, self.path, 'the download stalled: %d bytes in the last %.0f s (at least '
                    '%d KiB are needed every %g s; %d bytes in all)' % (
                        self.total - self.mark_total, now - self.mark, _MIN_PROGRESS >> 10, self.stall_timeout,
                        self.total)))
            self.mark, self.mark_total = now, self.total


def _fetch(entry, url, out, path, timeout, stall_timeout):
    """Copy ``url`` (http, https, file or a plain path) into the open file ``out``, within the entry's size limit.

    An http(s) download that brings less than 64 KiB in ``stall_timeout``
    seconds, or nothing for ``timeout`` seconds, is stopped.
    """
    scheme = urlparse(url).scheme
    progress = _Progress(entry, url, path, stall_timeout)
    try:
        if scheme in ('http', 'https'):
            with requests.get(url, stream=True, timeout=(timeout, min(timeout, stall_timeout))) as resp:
                resp.raise_for_status()
                announced = resp.headers.get('Content-Length')
                if announced and announced.isdigit() and int(announced) > progress.limit:
                    raise progress.too_big(int(announced))
                # read1 returns what has arrived (iter_content waits for a whole chunk), so stalls are seen.
                for chunk in iter(lambda: resp.raw.read1(_CHUNK, decode_content=True), b''):
                    progress.add(len(chunk))
                    _write(out, chunk)
        else:
            local = url2pathname(urlparse(url).path) if scheme == 'file' else url
            with open(local, 'rb') as src:
                for chunk in iter(lambda: src.read(_CHUNK), b''):
                    progress.add(len(chunk))
                    _write(out, chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
        if isinstance(err, ModelStoreError):
            raise
        raise ModelStoreError(_offline_message(entry, url, path, '%s: %s' % (type(err).__name__, err))) from None


def _unzip(entry, url, archive, folder, parts):
    """Extract ``entry.file_name`` from a downloaded zip into a new temporary file; returns its path."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            member = next((n for n in names if os.path.basename(n) == entry.file_name), None)
            if member is None:
                raise ModelStoreError('%s: the zip archive from %s holds %s, not %s'
                                      % (entry.name, url, ', '.join(names) or 'nothing', entry.file_name))
            fd, part = _new_part(entry, folder)
            parts.append(part)
            with zf.open(member) as src, os.fdopen(fd, 'wb') as dst:
                for chunk in iter(lambda: src.read(_CHUNK), b''):
                    _write(dst, chunk)
            return part
    except zipfile.BadZipFile:
        raise ModelStoreError('%s: %s did not serve a zip archive' % (entry.name, url)) from None


@contextlib.contextmanager
def _terminate_cleanly():
    """Make a SIGTERM with no handler of its own an exception (exit status 143) while a download runs.

    The default action ends the process at once, leaving the ``.part`` file;
    as an exception it passes through the download's clean-up first. Only in
    the main thread (where signal handlers are set), and the handler is put back.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _download(entry, path, timeout, stall_timeout):
    with _terminate_cleanly():
        _download_part(entry, path, timeout, stall_timeout)


def _download_part(entry, path, timeout, stall_timeout):
    folder = os.path.dirname(path)
    url = source_url(entry)
    parts = []
    try:
        fd, part = _new_part(entry, folder)
        parts.append(part)
        with os.fdopen(fd, 'wb') as out:
            _fetch(entry, url, out, path, timeout, stall_timeout)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as err:
                raise _StoreWrite(err) from None
        if entry.archive == 'zip':
            part = _unzip(entry, url, part, folder, parts)
        found = file_hash(part, entry.hash_type)
        if found != entry.hash:
            raise ModelStoreError('%s: the file downloaded from %s has %s %s, expected %s; it was deleted, '
                                  'not stored as %s' % (entry.name, url, _HASH_NAMES[entry.hash_type], found,
                                                        entry.hash, path))
        os.replace(part, path)
        log.info('stored %s (%s %s) at %s', entry.name, entry.hash_type, entry.hash, path)
    except _StoreWrite as failed:
        raise _store_failure(entry, path, failed.err) from None
    except ModelStoreError:
        raise
    except OSError as err:  # creating, closing or renaming the files in the store folder
        raise _store_failure(entry, path, err) from None
    finally:
        for p in parts:
            if os.path.exists(p):
                os.remove(p)


def get_model_file(entry, root=DEFAULT_ROOT, timeout=60, lock_timeout=600, stall_timeout=30):
    """The path of a store entry's verified file, downloading it when missing or damaged.

    Parameters
    ----------
    entry : StoreEntry or str
        An entry or an entry name (see :func:`pretrained_entries`).
    root : str
        The store folder (default ``~/.mxnet/models``; ``$MXNET_HOME/models``
        when ``MXNET_HOME`` is set and ``root`` is left at the default).
    timeout : float
        Seconds to wait for the server to answer or send more data.
    lock_timeout : float
        Seconds to wait for another process's download of the same file.
    stall_timeout : float
        A download that brings less than 64 KiB in this many seconds is
        stopped (a server that trickles). Downloads are also limited in size
        (:func:`size_limit`): a server that streams on is stopped there.

    Returns
    -------
    str
        The path of a file whose hash is the entry's.

    Raises
    ------
    ModelStoreError
        The file is missing or damaged and cannot be fetched (the message
        says where to put it and which hash it must have), or the download
        does not have the published hash.
    """
    if not isinstance(entry, StoreEntry):
        if entry not in _ENTRIES:
            raise ValueError('no store entry %r; entries: %s' % (entry, ', '.join(_ENTRIES)))
        entry = _ENTRIES[entry]
    folder = resolve_root(root)
    path = os.path.join(folder, entry.file_name)
    # Files only appear under their final name by atomic rename, so a hit needs no lock.
    if os.path.isfile(path) and file_hash(path, entry.hash_type) == entry.hash:
        return path
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ModelStoreError('the model store folder %s is not a folder; point root= (or MXNET_HOME, whose '
                              'models/ subfolder is the store) at a folder' % folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ModelStoreError('cannot create the model store folder %s: %s; point root= (or MXNET_HOME) at a '
                              'folder you can write' % (folder, err.strerror or err)) from None
    lock = filelock.FileLock(path + '.lock', timeout=lock_timeout, mode=0o666 & ~_umask())
    try:
        with lock:
            # Under the lock no other download of this file runs: a .part is an orphan of a killed process.
            for orphan in glob.glob(glob.escape(path) + '.part-*'):
                os.remove(orphan)
            stale = None
            if os.path.isfile(path):
                stale = file_hash(path, entry.hash_type)
                if stale == entry.hash:
                    return path
                log.warning('%s has %s %s, expected %s (%s); fetching it again from %s',
                            path, entry.hash_type, stale, entry.hash, entry.name, source_url(entry))
            try:
                _download(entry, path, timeout, stall_timeout)
            except ModelStoreError as err:
                if stale is None:
                    raise
                raise ModelStoreError('%s The file now at %s has %s %s and is not used.'
                                      % (err, path, _HASH_NAMES[entry.hash_type], stale)) from None
    except filelock.Timeout:
        raise ModelStoreError('waited %gs for %s, held by another download of %s; if no download is '
                              'running, delete the lock file' % (lock_timeout, lock.lock_file, entry.name)) from None
    except ModelStoreError:
        raise
    except OSError as err:  # the lock file cannot be created or opened
        raise _store_failure(entry, path, err) from None
    return path
