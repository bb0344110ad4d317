"""What a checkpoint's ``.json`` must hold: its schema, checked field by field before a resume trusts any of it.

A record is written by :func:`gluon_asymmnet.training.run_state.save_checkpoint`;
a hand edit or a damaged file is refused naming the field (``"num_update"
is -100; it must be an integer >= 0``) rather than crashing later or being
used as it is. Besides the types and ranges, the record must agree with
itself: its last history entry is its epoch and update count, its best epoch
is not after it, and it leaves out the optimizer state only where the run
kept it on parameter servers (``dist_async``).

:func:`checkpoint_stem_epoch` reads the epoch from a checkpoint's file
name, so that a newest record too damaged to be read is still recognised
as the newest (and refused by name, not skipped for an older one).
"""
import math
import numbers
import os
import re

__all__ = ['RecordError', 'check_record', 'checkpoint_stem_epoch', 'plain_name']


class RecordError(ValueError):
    """A checkpoint record that does not fit the schema; the message names the field."""


# <top1>-<dataset>-<model>-<epoch>-best and <dataset>-<model>-<epoch> (run_state.best_stem, periodic_stem).
_STEM = re.compile(r'^(?:\d+\.\d{4}-)?.+-[A-Za-z0-9_.]+-(\d+)(?:-best)?$')
_SHA256 = re.compile(r'^[0-9a-f]{64}$')


def checkpoint_stem_epoch(name):
    """The epoch in a checkpoint file's name (``tiny-asymmnet_small-3.json`` -> 3), or None for another name."""
    match = _STEM.match(os.path.splitext(os.path.basename(name))[0])
    return int(match.group(1)) if match else None


def plain_name(name):
    """A file name without a folder: what a checkpoint's ``.json`` may name."""
    return isinstance(name, str) and name not in ('', '.', '..') and os.path.basename(name) == name and \
        '/' not in name and '\\' not in name and '\0' not in name


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _field(record, key, kind, required=True, within=''):
    """Check ``record[key]`` against ``kind`` (a predicate and the words for it); ``within``: where the record is."""
    if key not in record:
        if required:
            raise RecordError('"%s%s" is missing' % (within, key))
        return
    test, words = kind
    if not test(record[key]):
        raise RecordError('"%s%s" is %s; it must be %s' % (within, key, _show(record[key]), words))


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + '...'


_COUNT = (lambda v: _is_int(v) and v >= 0, 'an integer >= 0')
_COUNT_OR_NULL = (lambda v: v is None or (_is_int(v) and v >= 0), 'an integer >= 0 or null')
_SCORE = (lambda v: _is_number(v) and 0 <= v <= 1, 'a number in [0, 1]')
_NAME = (plain_name, 'a file name in the checkpoint\'s folder')
_NAME_OR_NULL = (lambda v: v is None or plain_name(v), 'a file name in the checkpoint\'s folder or null')
_OBJECT = (lambda v: isinstance(v, dict), 'an object')
_OBJECT_OR_NULL = (lambda v: v is None or isinstance(v, dict), 'an object or null')
_LIST = (lambda v: isinstance(v, list), 'a list')
_SHA = (lambda v: isinstance(v, str) and bool(_SHA256.match(v)), 'a sha256 in hex')
_SCORE_OR_NULL = (lambda v: v is None or (_is_number(v) and 0 <= v <= 1), 'a number in [0, 1] or null')


def check_record(record):
    """Check a checkpoint's ``.json`` content against the schema (module notes).

    Raises
    ------
    RecordError
        Naming the first field that does not fit, its value and what it must be.
    """
    if not isinstance(record, dict):
        raise RecordError('it holds %s, not an object' % type(record).__name__.replace('NoneType', 'null'))
    _field(record, 'epoch', _COUNT)
    _field(record, 'num_update', _COUNT)
    _field(record, 'params', _NAME)
    _field(record, 'states', _NAME_OR_NULL, required=False)
    _field(record, 'best_params', _NAME_OR_NULL, required=False)
    _field(record, 'best_top1', _SCORE)
    _field(record, 'best_epoch', _COUNT_OR_NULL, required=False)
    _field(record, 'history', _LIST)
    _field(record, 'config', _OBJECT)
    _field(record, 'sha256', _OBJECT, required=False)
    for key in ('settings', 'data'):
        _field(record['config'], key, _OBJECT_OR_NULL, required=False, within='config.')
    for key in record.get('sha256') or {}:
        _field(record['sha256'], key, _SHA, within='sha256.')
    for i, entry in enumerate(record['history']):
        if not isinstance(entry, dict):
            raise RecordError('"history[%d]" is %s; it must be an object' % (i, _show(entry)))
        within = 'history[%d].' % i
        _field(entry, 'epoch', _COUNT, within=within)
        _field(entry, 'num_update', _COUNT, required=False, within=within)
        for key in ('top1', 'top5'):
            _field(entry, key, _SCORE_OR_NULL, required=False, within=within)
    _check_consistent(record)


def _check_consistent(record):
    epoch, history = record['epoch'], record['history']
    if history:
        last = history[-1]
        if last['epoch'] != epoch:
            raise RecordError('"epoch" is %d but the last history entry is of epoch %d' % (epoch, last['epoch']))
        if 'num_update' in last and last['num_update'] != record['num_update']:
            raise RecordError('"num_update" is %d but the history reached %d updates by epoch %d'
                              % (record['num_update'], last['num_update'], epoch))
    if record.get('best_epoch') is not None and record['best_epoch'] > epoch:
        raise RecordError('"best_epoch" is %d, after the record\'s epoch %d' % (record['best_epoch'], epoch))
    settings = record['config'].get('settings') or {}
    if record.get('states') is None and settings and settings.get('kvstore') != 'dist_async':
        raise RecordError('"states" is null, but the run (--kvstore %s) saved its optimizer state with every '
                          'checkpoint' % settings.get('kvstore'))
