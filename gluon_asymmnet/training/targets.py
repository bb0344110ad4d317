"""Training targets and losses: label smoothing, mixup, knowledge distillation (GluonCV semantics).

- Label smoothing (``--label-smoothing``): the one-hot target becomes
  ``1 - eta + eta/K`` on the true class and ``eta/K`` elsewhere, eta = 0.1.
- Mixup (``--mixup``): ``x = lam*x + (1-lam)*x[::-1]`` and the same mix of
  the (smoothed) one-hot targets, ``lam ~ Beta(alpha, alpha)`` per batch, and
  ``lam = 1`` in the last ``--mixup-off-epoch`` epochs.
- Distillation (``--teacher``): GluonCV's ``DistillationSoftmaxCrossEntropyLoss``:
  ``(1-w) * T^2 * CE(softmax(z/T), p_teacher) + w * CE(softmax(z), y)`` with
  ``p_teacher = softmax(teacher(x)/T)``, w = ``--hard-weight``.
"""
import os

import mxnet as mx
import numpy as np
from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
from mxnet import gluon

from ..checkpoint import CheckpointError, load_checkpoint
from ..home import mxnet_home
from ..model_zoo import get_model, get_model_list
from .options import ConfigError

__all__ = ['SMOOTHING_ETA', 'smooth_labels', 'mixup_lambda', 'mix', 'build_loss', 'build_teacher',
           'pretrained_file']

SMOOTHING_ETA = 0.1


def smooth_labels(label, classes, eta=SMOOTHING_ETA):
    """Dense targets: ``1 - eta + eta/classes`` on the label, ``eta/classes`` elsewhere."""
    return label.one_hot(classes, on_value=1 - eta + eta / classes, off_value=eta / classes)


def mixup_lambda(opt, epoch, batch, rank=0):
    """The mixing weight of one batch: ``Beta(alpha, alpha)``, a pure function of seed/epoch/batch/rank.

    It is 1 (no mixing) in the last ``--mixup-off-epoch`` epochs.
    """
    if epoch >= opt.num_epochs - opt.mixup_off_epoch:
        return 1.0
    rng = np.random.default_rng([opt.seed, epoch, batch, rank, 0x6d6978])
    return float(rng.beta(opt.mixup_alpha, opt.mixup_alpha))


def mix(data, label, lam, classes, eta):
    """Mix a batch with its reverse: ``(lam*x + (1-lam)*x[::-1], dense mixed targets)``."""
    mixed = lam * data + (1 - lam) * data[::-1]
    y1 = smooth_labels(label, classes, eta)
    y2 = smooth_labels(label[::-1], classes, eta)
    return mixed, lam * y1 + (1 - lam) * y2


def build_loss(opt):
    """The loss block: dense targets with smoothing or mixup, a teacher term with distillation."""
    sparse = not (opt.label_smoothing or opt.mixup)
    if opt.teacher is not None:
        return DistillationSoftmaxCrossEntropyLoss(temperature=opt.temperature, hard_weight=opt.hard_weight,
                                                   sparse_label=sparse)
    return gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=sparse)


def pretrained_file(name):
    """Where GluonCV keeps ``name``'s pretrained parameters on this machine (nothing is downloaded).

    Raises
    ------
    ConfigError
        If GluonCV has no pretrained weights of that name or the file is not there.
    """
    from gluoncv.model_zoo.model_store import pretrained_model_list, short_hash
    if name not in pretrained_model_list():
        raise ConfigError('--teacher %s: GluonCV publishes no pretrained weights of that name; '
                          'give them with --teacher-params' % name)
    path = mxnet_home('models', '%s-%s.params' % (name, short_hash(name)))
    if not os.path.isfile(path):
        raise ConfigError("--teacher %s: no --teacher-params given and GluonCV's pretrained file %s is not on "
                          "this machine (training never downloads); put it there or pass --teacher-params"
                          % (name, path))
    return path


def build_teacher(opt, ctx):
    """The distillation teacher, with weights, on ``ctx``, hybridized.

    ``--teacher`` names a model of this package (built at width 1.0; weights in
    any layout :func:`~gluon_asymmnet.load_checkpoint` reads) or of GluonCV's
    model zoo. Weights come from ``--teacher-params`` or else GluonCV's
    pretrained file when it is already on this machine.
    """
    name = opt.teacher
    params = opt.teacher_params or pretrained_file(name)
    if name in get_model_list():
        teacher = get_model(name, classes=opt.classes)
        try:
            load_checkpoint(teacher, params, ctx=ctx)
        except CheckpointError as err:
            raise ConfigError('--teacher %s: %s' % (name, err))
    else:
        from gluoncv.model_zoo import get_model as gcv_get_model
        try:
            teacher = gcv_get_model(name, classes=opt.classes, pretrained=False)
        except ValueError as err:
            raise ConfigError('--teacher %s: not a model of this package (%s) nor of GluonCV (%s)'
                              % (name, ', '.join(get_model_list()), str(err).splitlines()[0]))
        if not os.path.isfile(params):
            raise ConfigError('--teacher-params %s: no such file' % params)
        try:
            teacher.load_parameters(params, ctx=ctx)
        except (AssertionError, mx.base.MXNetError, ValueError) as err:
            raise ConfigError('--teacher %s: cannot load %s (%s)' % (name, params, str(err).splitlines()[0]))
    teacher.cast(opt.dtype)
    if opt.mode == 'hybrid':
        teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher
