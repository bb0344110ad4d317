"""One training run per run folder: a lock held while a run writes there, and who holds it.

Two runs writing to one ``--save-dir`` overwrite each other's checkpoints
and interleave their logs. :class:`RunLock` holds an exclusive ``flock`` on
``<run folder>/.train.lock`` (released by the kernel when the process ends,
however it ends, so a killed run never leaves the folder locked) and writes
who holds it (pid, host, start time, command) to ``.train.lock.owner``; a
second run is refused with that description.
"""
import json
import os
import socket
import sys
import time

import filelock

from ..files import atomic_write
from .config import ConfigError

__all__ = ['LOCK_NAME', 'RunLock']

LOCK_NAME = '.train.lock'


class RunLock:
    """An exclusive lock on a run folder (a context manager).

    Parameters
    ----------
    folder : str
        The run folder (it must exist).

    Raises
    ------
    ConfigError
        On entering, when another run holds the folder: the message names it
        (pid, host, start time, command) and the fix.
    """

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self.owner_path = self.path + '.owner'
        self._lock = filelock.FileLock(self.path, timeout=0)

    def _owner(self):
        try:
            with open(self.owner_path) as f:
                owner = json.load(f)
            return 'pid %s on %s, started %s: %s' % (owner['pid'], owner['host'], owner['started'],
                                                     owner['command'])
        except (OSError, ValueError, KeyError, TypeError):
            return 'it has not said who it is yet'

    def __enter__(self):
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise ConfigError('--save-dir %s is in use by another training run (%s); wait for it to end or give '
                              'another --save-dir (two runs in one folder overwrite each other\'s checkpoints)'
                              % (self.folder, self._owner())) from None
        owner = dict(pid=os.getpid(), host=socket.gethostname(),
                     started=time.strftime('%Y-%m-%d %H:%M:%S %z'), command=' '.join(sys.argv))

        def write(tmp):
            with open(tmp, 'w') as f:
                json.dump(owner, f)
        try:
            atomic_write(self.owner_path, write)
        except OSError:
            pass  # the lock holds without its description
        return self

    def __exit__(self, *exc):
        try:
            os.remove(self.owner_path)
        except OSError:
            pass
        self._lock.release()
