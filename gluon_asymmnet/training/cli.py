"""``train_imagenet.py``'s entry point: user mistakes become one clear line and exit code 2."""
import sys

from ..checkpoint import CheckpointError
from ..data import DataError
from .loop import TrainingDiverged, train
from .options import ConfigError, parse_args

__all__ = ['main']


def main(argv=None):
    """Parse ``argv``, train, and return the process exit code.

    0: trained; 1: the loss diverged (the message names epoch, batch and the last
    good checkpoint); 2: bad options or data (the message names the flag or file).
    """
    try:
        train(parse_args(argv))
    except (ConfigError, DataError, CheckpointError) as err:
        print('train_imagenet.py: error: %s' % err, file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print('train_imagenet.py: %s' % err, file=sys.stderr)
        return 1
    return 0
