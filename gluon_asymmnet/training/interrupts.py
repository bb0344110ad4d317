"""A run stopped by a signal: Ctrl-C (SIGINT) or SIGTERM ends it with one line, what it reached and how to go on.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the run is; under
``train_imagenet.py`` SIGTERM raises :class:`Terminated` (a
``KeyboardInterrupt``) the same way (:func:`sigterm_raises`; importing the
package installs no handler). Either unwinds the run like any error: a
checkpoint being written is removed with its temporary files
(:func:`gluon_asymmnet.training.run_state.save_checkpoint`), the last complete
one is kept, and :func:`~gluon_asymmnet.training.train` raises
:class:`RunInterrupted`, whose :meth:`~RunInterrupted.describe` is the line
the command prints (exit status 128 + the signal: 130 for Ctrl-C, 143 for
SIGTERM). A SIGKILL leaves what it leaves; the next run in the folder removes
it (:func:`~gluon_asymmnet.training.run_state.clean_interrupted_saves`).
"""
import contextlib
import os
import shlex
import signal

__all__ = ['Terminated', 'RunInterrupted', 'signal_of', 'sigterm_raises', 'resume_command']


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, as Ctrl-C raises ``KeyboardInterrupt``."""
    signum = signal.SIGTERM


def signal_of(stop):
    """The signal behind a ``KeyboardInterrupt`` (SIGINT unless it says otherwise)."""
    return getattr(stop, 'signum', signal.SIGINT)


class RunInterrupted(KeyboardInterrupt):
    """A training run stopped by a signal: where it was, and the last complete checkpoint it kept.

    Attributes
    ----------
    signum : int
    reached : str
        ``'epoch 3, batch 120 of 500'``, ``'epoch 3, while saving its checkpoint'``, ...
    last_checkpoint : str or None
        The ``.params`` of the last complete checkpoint in the run folder.
    rank : int
        The worker's rank in a distributed run (rank 0 writes the checkpoints).
    """

    def __init__(self, signum, reached, last_checkpoint, rank=0):
        super().__init__(signum, reached, last_checkpoint)
        self.signum, self.reached, self.last_checkpoint, self.rank = signum, reached, last_checkpoint, rank

    @property
    def exit_status(self):
        """128 + the signal, as a shell reports a process the signal ended."""
        return 128 + int(self.signum)

    def describe(self, command=None):
        """The one line: signal, what was reached, the checkpoint kept, and ``command`` to continue."""
        if self.rank:
            then = 'rank 0 keeps the checkpoints and says how to continue'
        elif self.last_checkpoint:
            then = 'last checkpoint kept: %s%s' % (self.last_checkpoint,
                                                  '; continue with: %s' % command if command else '')
        else:
            then = 'no checkpoint was written yet: start it again%s' % (' (%s)' % command if command else '')
        return 'interrupted by %s at %s; %s' % (signal.Signals(self.signum).name, self.reached, then)


@contextlib.contextmanager
def sigterm_raises():
    """Within the block, SIGTERM raises :class:`Terminated` (in the main thread, as SIGINT does).

    Only in this process: a forked data worker, which inherits the handler,
    ignores the signal (a SIGTERM to the whole process group), as MXNet's
    workers ignore SIGINT: killed while it holds its pool's queue lock, it
    would leave the run's clean-up waiting for that lock. The run stops its
    workers itself (:meth:`gluon_asymmnet.data.ImageBatches.close`).
    """
    owner = os.getpid()

    def raise_terminated(signum, frame):
        if os.getpid() == owner:
            raise Terminated()
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Flags a resumed run must not repeat (with the number of values each takes).
_DROPPED = {'--overwrite': 0, '--resume-params': 1, '--resume-states': 1, '--resume-epoch': 1}


def resume_command(argv, program='python train_imagenet.py'):
    """``argv`` as the command that continues the run: ``--resume`` (no value: the newest checkpoint) in place of
    ``--resume``/``--resume-params``/``--resume-states``/``--resume-epoch`` and ``--overwrite``."""
    out, skip = [], 0
    for i, arg in enumerate(argv):
        if skip:
            skip -= 1
            continue
        name = arg.split('=', 1)[0]
        if name in _DROPPED:
            skip = _DROPPED[name] if '=' not in arg else 0
            continue
        if name == '--resume':
            # Its value, when it has one, is a file name (the next argument not a flag).
            if '=' not in arg and i + 1 < len(argv) and not argv[i + 1].startswith('-'):
                skip = 1
            continue
        out.append(arg)
    return ' '.join([program] + [shlex.quote(a) for a in out + ['--resume']])
