"""``train_imagenet.py``'s command line: argv -> :class:`TrainConfig`, and user mistakes as one line with exit code 2.

The flags are :class:`TrainConfig`'s fields (their metadata), so the parser
and the config cannot drift apart; ``--recipe NAME`` starts from a recipe of
:mod:`gluon_asymmnet.training.recipes` and the other flags override it.
GluonCV's flags that are not fields (:mod:`.compat`) are accepted with their
meaning or refused with a reason.
"""
import argparse
import dataclasses
import signal
import sys

from ..checkpoint import CheckpointError
from ..data import DataError
from .compat import add_compat_flags, apply_compat
from .config import ConfigError, TrainConfig, flag_of
from .interrupts import RunInterrupted, resume_command, sigterm_raises, signal_of
from .loop import TrainingDiverged, train
from .recipes import RECIPES, train_recipe
from .run_state import SaveError

__all__ = ['build_parser', 'parse_args', 'main']

_FIELDS = dataclasses.fields(TrainConfig)


def build_parser():
    """The argument parser of ``train_imagenet.py``: one flag per :class:`TrainConfig` field.

    Parsing leaves out the flags not given (``argparse.SUPPRESS``): the
    defaults are :class:`TrainConfig`'s, or the recipe's with ``--recipe``.

    Returns
    -------
    argparse.ArgumentParser
    """
    p = argparse.ArgumentParser(
        description='Train AsymmNet / MobileNetV3 on ImageNet (GluonCV-style). '
                    'Without data flags it trains on the bundled handwritten-digits dataset.',
        argument_default=argparse.SUPPRESS)
    p.add_argument('--recipe', choices=sorted(RECIPES),
                   help='start from this recipe (gluon_asymmnet.training.recipes); other flags override it')
    groups = {}
    for f in _FIELDS:
        group = groups.get(f.metadata['group'])
        if group is None:
            group = groups[f.metadata['group']] = p.add_argument_group(f.metadata['group'])
        kwargs = dict(f.metadata['argparse'], dest=f.name, help=f.metadata['help'])
        if isinstance(f.default, bool):
            kwargs['action'] = 'store_true'
        else:
            kwargs.setdefault('type', type(f.default) if f.default is not None else str)
        group.add_argument(*flag_of(f), **kwargs)
        if f.metadata['negation']:
            group.add_argument(f.metadata['negation'], dest=f.name, action='store_false',
                               help='undo %s (the later of the two wins)' % flag_of(f)[0])
    add_compat_flags(p)
    return p


def parse_args(argv=None):
    """Parse and check ``train_imagenet.py`` arguments.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    TrainConfig

    Raises
    ------
    ConfigError
        A combination of flags that cannot work, or a refused GluonCV flag (the
        message names them). Flags accepted without effect are noted on stderr.
    """
    given = vars(build_parser().parse_args(argv))
    for note in apply_compat(given):
        print('train_imagenet.py: note: %s' % note, file=sys.stderr)
    recipe = given.pop('recipe', None)
    return train_recipe(recipe, **given) if recipe else TrainConfig(**given)


def main(argv=None):
    """Parse ``argv``, train, and return the process exit code.

    0: trained; 1: the loss diverged (the message names epoch, batch and the last
    good checkpoint); 2: bad options or data (the message names the flag or
    file), or a checkpoint that cannot be written (a full disk: the message
    names the last complete checkpoint); 130 (Ctrl-C) or 143 (SIGTERM): stopped,
    in one line naming the epoch and batch reached, the last checkpoint kept and
    the command that continues the run (:mod:`.interrupts`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with sigterm_raises():
            train(parse_args(argv))
    except (ConfigError, DataError, CheckpointError, SaveError) as err:
        print('train_imagenet.py: error: %s' % err, file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print('train_imagenet.py: %s' % err, file=sys.stderr)
        return 1
    except RunInterrupted as stop:
        print('train_imagenet.py: %s' % stop.describe(resume_command(argv)), file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt as stop:  # before the run started: nothing was written
        print('train_imagenet.py: interrupted by %s before training started; nothing was written'
              % signal.Signals(signal_of(stop)).name, file=sys.stderr)
        return 128 + int(signal_of(stop))
    return 0
