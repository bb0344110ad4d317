"""Losses and what they train towards: label smoothing, mixup, knowledge distillation (GluonCV semantics).

- Label smoothing (``--label-smoothing``): the one-hot target becomes
  ``1 - eta + eta/K`` on the true class and ``eta/K`` elsewhere, eta = 0.1.
- Mixup (``--mixup``): ``x = lam*x + (1-lam)*x[::-1]`` and the same mix of
  the (smoothed) one-hot targets, ``lam ~ Beta(alpha, alpha)`` per batch, and
  ``lam = 1`` in the last ``--mixup-off-epoch`` epochs.
- Distillation (``--teacher``): GluonCV's ``DistillationSoftmaxCrossEntropyLoss``:
  ``(1-w) * T^2 * CE(softmax(z/T), p_teacher) + w * CE(softmax(z), y)`` with
  ``p_teacher = softmax(teacher(x)/T)``, w = ``--hard-weight``.

:class:`TrainingObjective` puts them together for the loop: the inputs and
targets of a batch, the loss, and the training metric (accuracy, or RMSE
against the mixed targets with mixup, as GluonCV logs).
"""
import os

import mxnet as mx
import numpy as np
from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
from mxnet import gluon

from ..checkpoint import CheckpointError, load_checkpoint
from ..param_file import read_index
from ..home import mxnet_home
from ..model_zoo import get_model, get_model_list
from .config import ConfigError

__all__ = ['SMOOTHING_ETA', 'smooth_labels', 'mixup_lambda', 'mix', 'build_loss', 'build_teacher',
           'pretrained_file', 'TrainingObjective']

SMOOTHING_ETA = 0.1


def smooth_labels(label, classes, eta=SMOOTHING_ETA):
    """Dense targets: ``1 - eta + eta/classes`` on the label, ``eta/classes`` elsewhere."""
    return label.one_hot(classes, on_value=1 - eta + eta / classes, off_value=eta / classes)


def mixup_lambda(alpha, seed, epoch, batch, rank=0, until=None):
    """The mixing weight of one batch: ``Beta(alpha, alpha)``, a pure function of seed/epoch/batch/rank.

    It is 1 (no mixing) from epoch ``until`` on (``num_epochs - mixup_off_epoch``).
    """
    if until is not None and epoch >= until:
        return 1.0
    rng = np.random.default_rng([seed, epoch, batch, rank, 0x6d6978])
    return float(rng.beta(alpha, alpha))


def mix(data, label, lam, classes, eta):
    """Mix a batch with its reverse: ``(lam*x + (1-lam)*x[::-1], dense mixed targets)``."""
    mixed = lam * data + (1 - lam) * data[::-1]
    y1 = smooth_labels(label, classes, eta)
    y2 = smooth_labels(label[::-1], classes, eta)
    return mixed, lam * y1 + (1 - lam) * y2


def build_loss(sparse_label=True, temperature=None, hard_weight=0.5):
    """The loss block: softmax cross-entropy, or GluonCV's distillation loss when ``temperature`` is given.

    Parameters
    ----------
    sparse_label : bool
        Class indices as targets; False for dense targets (label smoothing, mixup).
    temperature : float, optional
        Distillation temperature T; the loss then takes the teacher's
        ``softmax(z_teacher / T)`` as a third argument.
    hard_weight : float
        Distillation: weight of the loss on the true label.
    """
    if temperature is not None:
        return DistillationSoftmaxCrossEntropyLoss(temperature=temperature, hard_weight=hard_weight,
                                                   sparse_label=sparse_label)
    return gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=sparse_label)


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


def build_teacher(name, params, classes, ctx, dtype='float32', hybridize=True):
    """The distillation teacher, with weights, on ``ctx``.

    ``name`` (``--teacher``) is a model of this package (built at width 1.0;
    weights in any layout :func:`~gluon_asymmnet.load_checkpoint` reads) or of
    GluonCV's model zoo. Weights come from ``params`` (``--teacher-params``) or
    else GluonCV's pretrained file when it is already on this machine; either
    is read by the safe reader (:func:`~gluon_asymmnet.load_checkpoint`), all
    or nothing.
    """
    params = params or pretrained_file(name)
    if name in get_model_list():
        teacher = get_model(name, classes=classes)
    else:
        from gluoncv.model_zoo import get_model as gcv_get_model
        try:
            teacher = gcv_get_model(name, classes=classes, pretrained=False)
        except ValueError as err:
            raise ConfigError('--teacher %s: not a model of this package (%s) nor of GluonCV (%s)'
                              % (name, ', '.join(get_model_list()), str(err).splitlines()[0]))
    try:
        # GluonCV's files have structural keys, like ours; its oldest ones the prefixed names that
        # HybridBlock.export writes (without arg:/aux:), which the export layout matches.
        legacy = not any('.' in key for key in read_index(params))
        load_checkpoint(teacher, params, ctx=ctx, layout='export' if legacy else None)
    except CheckpointError as err:
        raise ConfigError('--teacher %s: %s' % (name, err))
    teacher.cast(dtype)
    if hybridize:
        teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher


class TrainingObjective:
    """What a batch trains the network towards, the loss, and the training metric.

    Parameters
    ----------
    classes : int
    label_smoothing : bool
        Smoothed one-hot targets (eta :data:`SMOOTHING_ETA`).
    mixup : bool
        Mix every batch with its reverse (:func:`mix`), weight :func:`mixup_lambda`.
    mixup_alpha : float
    mixup_until : int, optional
        First epoch without mixing.
    seed, rank : int
        Make the mixing weights a pure function of (seed, epoch, batch, rank).
    teacher : mxnet.gluon.Block, optional
        Distil from its ``softmax(teacher(x) / temperature)``.
    temperature, hard_weight : float
        Distillation parameters (:func:`build_loss`).
    dtype : str
        Inputs and targets are cast to it.
    """

    def __init__(self, classes, label_smoothing=False, mixup=False, mixup_alpha=0.2, mixup_until=None, seed=0,
                 rank=0, teacher=None, temperature=20.0, hard_weight=0.5, dtype='float32'):
        self.classes, self.label_smoothing, self.mixup = classes, label_smoothing, mixup
        self.mixup_alpha, self.mixup_until, self.seed, self.rank = mixup_alpha, mixup_until, seed, rank
        self.teacher, self.temperature, self.dtype = teacher, temperature, dtype
        self.eta = SMOOTHING_ETA if label_smoothing else 0.0
        self.loss = build_loss(sparse_label=not (label_smoothing or mixup),
                               temperature=temperature if teacher is not None else None, hard_weight=hard_weight)

    def new_metric(self):
        """RMSE against the mixed targets with mixup (as GluonCV logs), else accuracy."""
        return mx.metric.RMSE() if self.mixup else mx.metric.Accuracy()

    def batch(self, datas, labels, epoch, index):
        """``(inputs, targets, teacher_probabilities or None)`` of one batch, a list entry per device."""
        if self.mixup:
            lam = mixup_lambda(self.mixup_alpha, self.seed, epoch, index, self.rank, self.mixup_until)
            mixed = [mix(x, y, lam, self.classes, self.eta) for x, y in zip(datas, labels)]
            datas, labels = [m[0] for m in mixed], [m[1] for m in mixed]
        elif self.label_smoothing:
            labels = [smooth_labels(y, self.classes) for y in labels]
        datas = [x.astype(self.dtype, copy=False) for x in datas]
        soft = None
        if self.teacher is not None:
            soft = [mx.nd.softmax(self.teacher(x) / self.temperature) for x in datas]
        return datas, labels, soft

    def losses(self, outputs, targets, soft=None):
        """Per-device losses (call under ``autograd.record()``)."""
        if soft is not None:
            return [self.loss(o, y.astype(self.dtype, copy=False), p) for o, y, p in zip(outputs, targets, soft)]
        return [self.loss(o, y.astype(self.dtype, copy=False)) for o, y in zip(outputs, targets)]

    def update_metric(self, metric, labels, targets, outputs):
        """Score ``outputs`` against the true ``labels`` (with mixup: against the mixed ``targets``)."""
        if self.mixup:
            metric.update(targets, [mx.nd.softmax(o.astype('float32', copy=False)) for o in outputs])
        else:
            metric.update(labels, [o.astype('float32', copy=False) for o in outputs])
