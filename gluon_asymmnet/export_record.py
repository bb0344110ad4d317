"""What an export was made for, and which files belong together: ``PREFIX-export.json``.

:func:`gluon_asymmnet.export.export` writes it beside ``PREFIX-symbol.json``,
``PREFIX-0000.params`` and ``PREFIX.onnx``, after them, under the same lock
(:func:`prefix_lock`): the input size and batch size the graph was made for,
whether it takes uint8 NHWC images (``preprocess``), the deployment form, and
the sha256 of every file. Readers (``eval.py --model-prefix``,
:func:`gluon_asymmnet.load_checkpoint`'s hint) use the sizes, and
:func:`check_files` refuses a set of files that were not exported together
(two exports to one prefix at once, a file copied over from another export).
Exports made before the record existed have none; they are read as before.
"""
import errno
import fcntl
import json
import os
import re
from contextlib import contextmanager

from .files import atomic_write, file_sha256

__all__ = ['RECORD_SUFFIX', 'ExportRecordError', 'record_path', 'write_record', 'read_record', 'check_files',
           'prefix_of', 'prefix_lock', 'recorded_use']

RECORD_SUFFIX = '-export.json'
_FORMAT = 'gluon_asymmnet export record 1'


class ExportRecordError(ValueError):
    """An export record that is unreadable, or files that do not match it."""


def record_path(prefix):
    return prefix + RECORD_SUFFIX


def prefix_of(params_file):
    """``PREFIX`` of an exported ``PREFIX-NNNN.params`` (None for another name)."""
    found = re.match(r'^(.*)-\d{4}\.params$', os.fspath(params_file))
    return found.group(1) if found else None


@contextmanager
def prefix_lock(folder):
    """Hold an exclusive lock on the export folder (``flock`` on the folder itself: no lock file is left).

    Exports into one folder take turns for their final renames, so the files
    under one prefix always come from one export.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:  # a file system without locks: the record's hashes still tell a mixed set
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)


def write_record(path, files, input_size, batch_size, preprocess, deploy, trainable):
    """Write the record of an export at ``path`` (atomically) and return it.

    ``files`` maps each kind to ``(final file name, path of the file to hash)``:
    the export hashes its temporary files before renaming them.
    """
    record = dict(format=_FORMAT, input_size=list(input_size), batch_size=batch_size, preprocess=bool(preprocess),
                  deploy=bool(deploy), trainable=bool(trainable),
                  files={kind: dict(name=name, sha256=file_sha256(source)) for kind, (name, source) in files.items()})
    text = json.dumps(record, indent=2, sort_keys=True)

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
    atomic_write(path, write)
    return record


def read_record(prefix):
    """The record of the export under ``prefix``, or None when there is none (an older export).

    Raises
    ------
    ExportRecordError
        The record is not a readable export record.
    """
    path = record_path(prefix)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        if record.get('format') != _FORMAT:
            raise ValueError('not an export record')
        height, width = (int(v) for v in record['input_size'])
        batch = record['batch_size']
        if batch is not None and (not isinstance(batch, int) or batch < 1):
            raise ValueError('batch_size %r' % (batch,))
        for entry in record['files'].values():
            if not re.fullmatch('[0-9a-f]{64}', entry['sha256']) or os.path.basename(entry['name']) != entry['name']:
                raise ValueError('a damaged files entry')
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ExportRecordError('%s: not a readable export record (%s); export again, or delete it to read the '
                                'files without their record' % (path, err)) from None
    record['input_size'] = (height, width)
    return record


def recorded_use(params_file):
    """``"; PREFIX-export.json records input 32x32, batch 2: ..."`` for an exported parameter file, else ``''``."""
    prefix = prefix_of(params_file)
    try:
        record = read_record(prefix) if prefix else None
    except ExportRecordError:
        return ''
    if record is None:
        return ''
    return ('; %s records input %dx%d%s: eval.py --model-prefix %s uses them'
            % (record_path(prefix), record['input_size'][0], record['input_size'][1],
               ', batch %d' % record['batch_size'] if record['batch_size'] else ', any batch', prefix))


def check_files(prefix, record, kinds):
    """Refuse files of ``kinds`` (``'symbol'``, ``'params'``, ``'onnx'``) under ``prefix`` that differ from the record.

    ``kinds`` maps a kind to the path read (the parameter file's epoch may vary).
    """
    for kind, path in kinds.items():
        entry = record['files'].get(kind)
        if entry is None:
            continue
        if os.path.basename(path) != entry['name'] or file_sha256(path) != entry['sha256']:
            raise ExportRecordError(
                '%s is not the %s file of the export recorded in %s (another export to the same prefix, or a file '
                'copied in); its files do not belong together: export again' % (path, kind, record_path(prefix)))
