"""Flags of GluonCV's and the authors' ``train_imagenet.py`` that are not :class:`TrainConfig` fields.

Published command lines carry them, so ``train_imagenet.py`` accepts each
with GluonCV's meaning or refuses it with a one-line reason; none changes
what a run computes beyond that meaning. The full table of both scripts'
flags is docs/flags.md.
"""
import os

from .config import ConfigError

__all__ = ['GLUONCV_REC', 'NO_EFFECT', 'REFUSED', 'DATA_BACKENDS', 'add_compat_flags', 'apply_compat']

# GluonCV's defaults of the RecordIO flags, read with --use-rec when a flag is not given.
GLUONCV_REC = {
    'rec_train': os.path.join('~', '.mxnet', 'datasets', 'imagenet', 'rec', 'train.rec'),
    'rec_train_idx': os.path.join('~', '.mxnet', 'datasets', 'imagenet', 'rec', 'train.idx'),
    'rec_val': os.path.join('~', '.mxnet', 'datasets', 'imagenet', 'rec', 'val.rec'),
    'rec_val_idx': os.path.join('~', '.mxnet', 'datasets', 'imagenet', 'rec', 'val.idx'),
}

# Switches GluonCV hands to other model families only: accepted, no effect on these networks (as in GluonCV).
NO_EFFECT = {
    '--use_se': 'GluonCV passes it to ResNeXt only; AsymmNet and MobileNetV3 place SE by their config tables',
    '--batch-norm': 'GluonCV passes it to VGG only; these networks always have BatchNorm',
}
REFUSED = {
    '--use-gn': 'GroupNorm in place of BatchNorm is not implemented for AsymmNet/MobileNetV3 (no published '
                'weights use it)',
}
DATA_BACKENDS = {
    'mxnet': None,
    'dali-gpu': "NVIDIA DALI is not supported (a CUDA-only pipeline, not a dependency here); the built-in "
                "pipeline reads RecordIO and folders: drop --data-backend or give 'mxnet'",
    'dali-cpu': "NVIDIA DALI is not supported (not a dependency here); the built-in pipeline reads RecordIO and "
                "folders: drop --data-backend or give 'mxnet'",
}

_DEST = '_compat_'


def add_compat_flags(parser):
    """Add the compatibility flags to ``parser`` (their values land under ``_compat_*`` names)."""
    group = parser.add_argument_group('accepted from GluonCV for its command lines (docs/flags.md)')
    group.add_argument('--use-rec', dest=_DEST + 'use_rec', action='store_true',
                       help='read RecordIO: --rec-* flags not given take GluonCV\'s defaults (~/.mxnet/datasets/'
                            'imagenet/rec/...); without it any --rec-* flag selects RecordIO anyway')
    group.add_argument('--data-backend', dest=_DEST + 'data_backend', choices=sorted(DATA_BACKENDS),
                       help='mxnet: the built-in pipeline (default); dali-*: refused')
    for flag, reason in sorted(NO_EFFECT.items()):
        group.add_argument(flag, dest=_DEST + flag.lstrip('-').replace('-', '_'), action='store_true',
                           help='no effect: ' + reason)
    for flag, reason in sorted(REFUSED.items()):
        group.add_argument(flag, dest=_DEST + flag.lstrip('-').replace('-', '_'), action='store_true',
                           help='refused: ' + reason)


def apply_compat(given):
    """Turn the compatibility flags in ``given`` (parsed values, changed in place) into field values.

    Returns
    -------
    list of str
        Notes for the user (flags accepted without effect).

    Raises
    ------
    ConfigError
        For a refused flag, with its reason.
    """
    flags = {k[len(_DEST):]: given.pop(k) for k in list(given) if k.startswith(_DEST)}
    notes = []
    for flag, reason in sorted(REFUSED.items()):
        if flags.get(flag.lstrip('-').replace('-', '_')):
            raise ConfigError('%s: %s' % (flag, reason))
    backend = flags.get('data_backend')
    if backend and DATA_BACKENDS[backend]:
        raise ConfigError('--data-backend %s: %s' % (backend, DATA_BACKENDS[backend]))
    for flag, reason in sorted(NO_EFFECT.items()):
        if flags.get(flag.lstrip('-').replace('-', '_')):
            notes.append('%s has no effect here: %s' % (flag, reason))
    if flags.get('use_rec'):
        others = [f for f in ('data_dir', 'image_folder') if given.get(f) is not None]
        if others:
            raise ConfigError('--use-rec reads RecordIO files; drop --%s' % others[0].replace('_', '-'))
        for name, path in GLUONCV_REC.items():
            given.setdefault(name, os.path.expanduser(path))
    return notes
