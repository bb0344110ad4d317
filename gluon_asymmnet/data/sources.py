"""Random-access image sources: an indexed RecordIO file pair, or a folder of class subfolders.

Both are checked when they are opened (so a bad path fails before training
starts, with a :class:`DataError` naming it) and read records with
``os.pread``, which shares no file position between threads and survives
``fork``: DataLoader worker processes and threads can use one source at once.
"""
import os
import struct
import unicodedata
import warnings

import numpy as np

from .errors import DataError

__all__ = ['RecordSource', 'FolderSource', 'IMAGE_EXTENSIONS', 'class_folder_names', 'list_image_folder',
           'image_files']

# dmlc RecordIO framing: 4-byte magic, then 4 bytes (continuation flag << 29 | length).
_MAGIC = 0xced7230a
_MAGIC_BYTES = struct.pack('<I', _MAGIC)
_IR_FORMAT = 'IfQQ'
_IR_SIZE = struct.calcsize(_IR_FORMAT)
# How many record offsets are spot-checked for a magic number when a file is opened; the index
# is refused when more than half of them miss.
_SPOT_CHECKS = 64

# Every format the decoder (OpenCV 4.11's imdecode, as pinned) reads: tests/test_hostile_round2.py decodes each.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.jpe', '.png', '.bmp', '.dib', '.webp', '.tif', '.tiff', '.jp2', '.pbm', '.pgm',
                    '.ppm', '.pnm', '.pfm', '.sr', '.ras', '.hdr', '.pic')


def _check_readable(path, what):
    if not path:
        raise DataError('no %s file given' % what)
    if not os.path.exists(path):
        raise DataError('%s file %s does not exist' % (what, path))
    if os.path.isdir(path):
        raise DataError('%s file %s is a directory' % (what, path))
    try:
        with open(path, 'rb') as f:
            f.read(1)
    except OSError as e:
        raise DataError('%s file %s cannot be read: %s' % (what, path, e.strerror or e)) from None


def _parse_idx(idx_path):
    keys, offsets = [], []
    with open(idx_path, 'rb') as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError
                key, offset = int(parts[0]), int(parts[1])
            except ValueError:
                raise DataError('index file %s, line %d: expected "<key>\\t<offset>", got %r'
                                % (idx_path, lineno, raw[:80])) from None
            keys.append(key)
            offsets.append(offset)
    if not keys:
        raise DataError('index file %s lists no records' % idx_path)
    return np.asarray(keys, dtype=np.int64), np.asarray(offsets, dtype=np.int64)


def _unpack_header(buf):
    """Split an image record into (label, record id, payload); MXNet's IRHeader layout."""
    flag, label, rid, _ = struct.unpack(_IR_FORMAT, buf[:_IR_SIZE])
    payload = buf[_IR_SIZE:]
    if flag > 0:
        label = np.frombuffer(payload[:4 * flag], dtype=np.float32)[0]
        payload = payload[4 * flag:]
    return float(label), rid, payload


class RecordSource(object):
    """An indexed RecordIO pair (``.rec`` + ``.idx``) of image records, as written by
    :func:`gluon_asymmnet.pack.pack_folder` or MXNet's im2rec.

    Parameters
    ----------
    rec : str
        Path of the ``.rec`` file.
    idx : str, optional
        Path of the ``.idx`` file; default: ``rec`` with its extension replaced by ``.idx``.

    Raises
    ------
    DataError
        When a file is missing or unreadable, the index does not parse, or the
        index points outside the ``.rec`` file or, at most of the places
        checked, at no record. A single damaged record is not an error here:
        reading it gives no image, and the loaders skip and count it.
    """

    _fd = None
    _pid = None

    def __init__(self, rec, idx=None):
        if idx is None and rec:
            idx = os.path.splitext(rec)[0] + '.idx'
        _check_readable(rec, 'RecordIO')
        _check_readable(idx, 'RecordIO index')
        self.rec, self.idx = rec, idx
        size = os.path.getsize(rec)
        if size < 8:
            raise DataError('RecordIO file %s is empty or truncated (%d bytes)' % (rec, size))
        keys, offsets = _parse_idx(idx)
        order = np.argsort(keys, kind='stable')
        self._keys = keys[order]
        self._offsets = offsets[order]
        # Whether the index fits the file is judged on a sample of records taken together: one
        # damaged record is skipped and counted when read, wherever it lies; an index of another
        # file (or a file that is not RecordIO) misses the record magic at most places.
        spots = np.unique(np.linspace(0, len(keys) - 1, min(_SPOT_CHECKS, len(keys))).astype(int))
        inside = [i for i in spots if 0 <= self._offsets[i] <= size - 8]
        missed = [i for i in inside if self._pread(4, int(self._offsets[i])) != _MAGIC_BYTES]
        if self._pread(4, 0) != _MAGIC_BYTES and len(missed) == len(inside):
            raise DataError('RecordIO file %s is not a RecordIO file: it does not start with the '
                            'record magic number' % rec)
        bad = np.flatnonzero((offsets < 0) | (offsets > size - 8))
        if bad.size:
            i = int(bad[0])
            raise DataError('index file %s: record %d at offset %d lies outside %s (%d bytes); '
                            'is it the index of another file?' % (idx, keys[i], offsets[i], rec, size))
        if 2 * len(missed) > len(spots):
            i = missed[0]
            raise DataError('RecordIO file %s holds no record at offset %d, where index %s puts record %d '
                            '(%d of %d records checked are not where the index says); is it the index of '
                            'another file?' % (rec, self._offsets[i], idx, self._keys[i], len(missed), len(spots)))
        # A record's extent ends where the next record (in file order) starts.
        sorted_offsets = np.unique(offsets)
        nxt = np.searchsorted(sorted_offsets, self._offsets, side='right')
        ends = np.append(sorted_offsets, size)[nxt]
        self._lengths = ends - self._offsets

    def __len__(self):
        return len(self._keys)

    @property
    def keys(self):
        """The record keys (ids of the ``.idx`` file), ascending; position i reads ``keys[i]``."""
        return self._keys

    def _pread(self, n, offset):
        if self._pid != os.getpid():
            self._fd = os.open(self.rec, os.O_RDONLY)
            self._pid = os.getpid()
        return os.pread(self._fd, n, offset)

    def read_record(self, pos):
        """Raw bytes of the record at position ``pos``, or None when the framing is broken."""
        offset, length = int(self._offsets[pos]), int(self._lengths[pos])
        buf = self._pread(length, offset)
        parts, p = [], 0
        while True:
            if len(buf) < p + 8:
                # A record longer than its slot (an unusual writer): read what it declares.
                buf += self._pread(p + 8 - len(buf), offset + len(buf))
                if len(buf) < p + 8:
                    return None
            if buf[p:p + 4] != _MAGIC_BYTES:
                return None
            lrec = struct.unpack('<I', buf[p + 4:p + 8])[0]
            cflag, n = lrec >> 29, lrec & ((1 << 29) - 1)
            start = p + 8
            if len(buf) < start + n:
                buf += self._pread(start + n - len(buf), offset + len(buf))
                if len(buf) < start + n:
                    return None
            parts.append(buf[start:start + n])
            if cflag in (0, 3):
                break
            # A payload that contained the magic number was split there (cflag 1, 2).
            p = start + ((n + 3) & ~3)
        return _MAGIC_BYTES.join(parts)

    def read(self, pos):
        """``(label, key, image bytes)`` of the record at ``pos``; image bytes None if unreadable."""
        raw = self.read_record(pos)
        key = int(self._keys[pos])
        if raw is None or len(raw) < _IR_SIZE:
            return float('nan'), key, None
        label, _, payload = _unpack_header(raw)
        return label, key, payload

    def describe(self, pos):
        return 'record %d of %s' % (self._keys[pos], self.rec)

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_fd'] = state['_pid'] = None
        return state

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


def _control_character(name):
    """The first character of ``name`` that breaks a one-name-a-line list (a newline, tab, ...), or None."""
    return next((c for c in name if unicodedata.category(c) in ('Cc', 'Zl', 'Zp')), None)


def class_folder_names(root):
    """The sorted names of the class subfolders of ``root`` (hidden ones, ``.name``, left out).

    Raises
    ------
    DataError
        ``root`` is missing, not a folder, unreadable, has no subfolder, or a
        subfolder's name holds a control character (a newline would shift
        every label after it in ``classes.txt``).
    """
    if not os.path.isdir(root):
        raise DataError('image folder %s does not exist' % root if not os.path.exists(root)
                        else 'image folder %s is not a directory' % root)
    try:
        names = sorted(d for d in os.listdir(root) if not d.startswith('.') and os.path.isdir(os.path.join(root, d)))
    except OSError as e:
        raise DataError('image folder %s cannot be read: %s' % (root, e.strerror or e)) from None
    if not names:
        raise DataError('image folder %s has no class subfolders (expected %s/<class>/<image>)' % (root, root))
    for name in names:
        bad = _control_character(name)
        if bad is not None:
            raise DataError('class folder %r in %s has a control character (%r) in its name; rename it (class '
                            'names are stored one a line)' % (name, root, bad))
    return names


def image_files(folder, skipped=None):
    """Image files under ``folder`` and its subfolders (hidden ones left out), sorted by path.

    Files of other formats are added to ``skipped`` as ``(path, reason)``.
    Symbolic links are followed, each real folder walked once.
    """
    found, seen = [], set()
    for top, dirs, files in os.walk(folder, followlinks=True, onerror=_raise_walk_error):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for fname in files:
            if fname.startswith('.'):
                continue
            path = os.path.join(top, fname)
            ext = os.path.splitext(fname)[1].lower()
            if ext in IMAGE_EXTENSIONS:
                found.append(path)
            elif skipped is not None:
                skipped.append((path, 'is not an image format OpenCV reads (%s)' % (ext or 'no extension')))
    return sorted(found)


def _raise_walk_error(err):
    raise DataError('class folder %s cannot be read: %s' % (err.filename, err.strerror or err))


def list_image_folder(root, classes=None, skipped=None, min_classes=1):
    """List ``root/<class>/.../<image>`` files.

    Subfolders of a class folder are walked, as torchvision's ``ImageFolder``
    does; hidden files and folders (``.ipynb_checkpoints``) are left out.

    Parameters
    ----------
    root : str
        A folder of class subfolders.
    classes : sequence of str or dict, optional
        Label of each folder name: a list (label = position) or a dict
        ``{folder name: label}``. Default: the sorted subfolders of ``root``.
    skipped : list, optional
        Receives ``(path, reason)`` of each file left out as not an image
        (a format the decoder does not read).
    min_classes : int
        Without ``classes``, refuse fewer class folders (2 for training data: one class
        trains a softmax that is always right).

    Returns
    -------
    (paths, labels, class_names) : (list of str, numpy.ndarray of int64, list of str)
        Files sorted by class then path; ``class_names`` are the subfolders read.

    Raises
    ------
    DataError
        Besides :func:`class_folder_names`' reasons: fewer than ``min_classes``
        classes (without ``classes``), a class folder that is unknown or holds no image.
    """
    names = class_folder_names(root)
    if classes is None:
        if len(names) < min_classes:
            raise DataError('image folder %s has one class folder (%s); training a classifier needs at least 2 '
                            'classes, each in its own subfolder' % (root, names[0]))
        mapping = {n: i for i, n in enumerate(names)}
    else:
        mapping = dict(classes) if isinstance(classes, dict) else {n: i for i, n in enumerate(classes)}
        unknown = [n for n in names if n not in mapping]
        if unknown:
            raise DataError('image folder %s has class folders that are not among the %d known classes: %s'
                            % (root, len(mapping), ', '.join(unknown[:10])))
    paths, labels = [], []
    for name in names:
        folder = os.path.join(root, name)
        files = image_files(folder, skipped)
        if not files:
            raise DataError('class folder %s holds no images (%s); add images or remove the folder'
                            % (folder, ' '.join(IMAGE_EXTENSIONS)))
        paths.extend(files)
        labels.extend([mapping[name]] * len(files))
    return paths, np.asarray(labels, dtype=np.int64), names


class FolderSource(object):
    """Images in ``root/<class>/*`` (ImageNet's ``train/<synset>/*.JPEG`` layout).

    Parameters
    ----------
    root : str
        The folder of class subfolders.
    classes : sequence of str or dict, optional
    min_classes : int
        See :func:`list_image_folder`.
    """

    def __init__(self, root, classes=None, min_classes=1):
        self.root = root
        skipped = []
        self.paths, self.labels, self.class_names = list_image_folder(root, classes, skipped, min_classes)
        if skipped:
            warnings.warn('left out %d files of %s that are not images the decoder reads: %s%s'
                          % (len(skipped), root, ', '.join(p for p, _ in skipped[:5]),
                             ' ...' if len(skipped) > 5 else ''), stacklevel=2)
        self._keys = np.arange(len(self.paths), dtype=np.int64)

    def __len__(self):
        return len(self.paths)

    @property
    def keys(self):
        return self._keys

    def read(self, pos):
        try:
            with open(self.paths[pos], 'rb') as f:
                payload = f.read()
        except OSError:
            payload = None
        return float(self.labels[pos]), pos, payload

    def describe(self, pos):
        return 'image %s' % self.paths[pos]
