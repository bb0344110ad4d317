"""Writing files without losing any: atomic replacement, folders checked before work starts, full disks named.

Every file this package writes for keeps (checkpoints, exports, evaluation
figures) appears complete under its final name or not at all
(:func:`atomic_write`); the folders a command will write to are checked
before it spends time computing (:func:`folder_problem`); and a write that
fails because the disk is full says so (:func:`is_disk_full`), whichever
layer noticed: Python's ``ENOSPC`` or MXNet's ``FileStream.Write incomplete``.
"""
import errno
import hashlib
import os
import stat
import tempfile

__all__ = ['atomic_write', 'folder_problem', 'read_only', 'free_bytes', 'is_disk_full', 'write_failure_reason',
           'file_sha256', 'not_a_file']

_MIB = float(1 << 20)


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

    The temporary file is in the same folder, flushed to disk and renamed over
    ``path``; on any failure it is removed and ``path`` is left as it was.

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


def read_only(folder):
    """True when ``folder`` is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def free_bytes(folder):
    """Bytes an unprivileged user may still write on ``folder``'s file system (None if unknown)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def folder_problem(folder, create=True):
    """Why files cannot be created in ``folder``, or None when they can.

    The folder (and its parents) is created when ``create``; otherwise a
    missing folder is judged by its nearest existing parent, where it would
    be created. The test creates a file and removes it, the only one that
    holds for root (who ignores permissions) as for everyone else.

    Returns
    -------
    str or None
        A short reason naming the path at fault: ``"/a/b is a file, not a
        folder"``, ``"cannot create /a/b: Permission denied"``, ``"/a/b is on
        a read-only file system"``, ``"cannot write in /a/b: Permission
        denied"``.
    """
    folder = os.path.abspath(os.fspath(folder))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return '%s is a file, not a folder' % existing
    if existing != folder and create:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            if read_only(existing):
                return '%s is on a read-only file system' % existing
            return 'cannot create %s: %s' % (folder, err.strerror or err)
        existing = folder
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix='.write-test-'):
            pass
    except OSError as err:
        if read_only(existing):
            return '%s is on a read-only file system' % existing
        return 'cannot write in %s: %s' % (existing, err.strerror or err)
    return None


def is_disk_full(err, free=None):
    """Whether a failed write ``err`` ran out of space (``free``: bytes left when it failed, if measured)."""
    return (getattr(err, 'errno', None) in (errno.ENOSPC, errno.EDQUOT) or 'Write incomplete' in str(err)
            or (free is not None and free < _MIB))


def write_failure_reason(err, folder):
    """Why writing in ``folder`` failed with ``err``, in a few words: a full disk by name, else the error's last line."""
    if is_disk_full(err):
        free = free_bytes(folder)
        return 'the disk holding %s is full%s' % (folder, ' (only %.1f MiB free)' % (free / _MIB)
                                                  if free is not None else '')
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return (str(err).strip().splitlines() or [type(err).__name__])[-1]


def file_sha256(path):
    """The hex sha256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def not_a_file(path):
    """What ``path`` is when it is not a regular file (``"is a folder"``, ``"is a named pipe (FIFO)"``...), else None.

    ``"does not exist"`` for a missing path (a broken symbolic link named as such). Symbolic links to
    regular files are regular files.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return 'is a broken symbolic link' if os.path.islink(path) else 'does not exist'
    except OSError as err:
        return 'cannot be read: %s' % (err.strerror or err)
    for test, what in ((stat.S_ISREG, None), (stat.S_ISDIR, 'is a folder'), (stat.S_ISFIFO, 'is a named pipe (FIFO)'),
                       (stat.S_ISCHR, 'is a character device'), (stat.S_ISBLK, 'is a block device'),
                       (stat.S_ISSOCK, 'is a socket')):
        if test(mode):
            return what
    return 'is not a regular file'
