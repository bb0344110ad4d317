"""The training log (GluonCV's ``train_imagenet.py`` line formats), progress bar and TensorBoard scalars.

The line formats are those of the released run's log, field for field
(tab separated), so tools that parse GluonCV logs read ours.
"""
import logging
import os
import sys

from tqdm import tqdm

__all__ = ['BATCH_FMT', 'TRAIN_FMT', 'SPEED_FMT', 'VAL_FMT', 'setup_logger', 'close_logger', 'log_to_file',
           'progress_bar', 'ScalarWriter']

BATCH_FMT = 'Epoch[%d] Batch [%d]\tSpeed: %f samples/sec\t%s=%f\tlr=%f'
TRAIN_FMT = '[Epoch %d] training: %s=%f'
SPEED_FMT = '[Epoch %d] speed: %d samples/sec\ttime cost: %f'
VAL_FMT = '[Epoch %d] validation: top1=%f top5=%f'

LOGGER_NAME = 'gluon_asymmnet.train'


class _StdoutHandler(logging.StreamHandler):
    """Writes to the current ``sys.stdout``, through tqdm while a progress bar is drawn."""

    def __init__(self):
        super().__init__(sys.stdout)

    def emit(self, record):
        self.stream = sys.stdout
        try:
            msg = self.format(record)
            if getattr(tqdm, '_instances', None):
                tqdm.write(msg, file=sys.stdout)
            else:
                self.stream.write(msg + self.terminator)
                self.flush()
        except Exception:  # logging's contract: a handler never raises
            self.handleError(record)


def log_to_file(logger, message):
    """Write ``message`` to the log file only (where the command line prints its own line to the console)."""
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logger.makeRecord(logger.name, logging.WARNING, __file__, 0, message, None, None))


def setup_logger(logging_file=None, rank=0):
    """The training logger: bare messages to stdout and, on rank 0, to ``logging_file``.

    Ranks other than 0 write to stdout only, each line prefixed with the rank.

    Parameters
    ----------
    logging_file : str, optional
        The log of record (appended to, so a resumed run continues it).
    rank : int
        Distributed worker rank.

    Returns
    -------
    logging.Logger
    """
    logger = logging.getLogger(LOGGER_NAME)
    close_logger(logger)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter('%(message)s' if rank == 0 else '[rank %d] %%(message)s' % rank)
    handler = _StdoutHandler()
    handler.setFormatter(fmt)
    logger.addHandler(handler)
    if logging_file and rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(logging_file)), exist_ok=True)
        fh = logging.FileHandler(logging_file)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


def close_logger(logger):
    """Detach and close every handler (the log file is complete on disk afterwards)."""
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()


def progress_bar(total, desc, enabled=None):
    """A tqdm bar on interactive terminals, ``None`` elsewhere (logs, CI, pipes)."""
    if enabled is None:
        enabled = sys.stdout.isatty()
    if not enabled:
        return None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stdout, dynamic_ncols=True)


class ScalarWriter:
    """TensorBoard scalars through tensorboardX, written on rank 0 only.

    Tags follow the authors' script: ``learning_rate``, ``train_acc`` (or
    ``train_rmse`` with mixup), ``train_loss``, ``validation_acc``,
    ``validation_acc_top5``, one point per epoch.
    """

    def __init__(self, logdir, enabled=True):
        self._writer = None
        if enabled:
            from tensorboardX import SummaryWriter
            self._writer = SummaryWriter(logdir=logdir, flush_secs=10)

    def add(self, epoch, **scalars):
        if self._writer is None:
            return
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, global_step=epoch)

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
