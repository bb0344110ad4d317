"""The learning-rate schedule and the update counting it assumes.

The schedule is GluonCV's ``LRSequential``: linear warm-up from
``--warmup-lr`` (0 by default) to ``--lr`` over ``--warmup-epochs``, then
``--lr-mode`` down to 0 (``constant``: stays at ``--lr``), updated every
iteration, with ``num_samples // global_batch`` iterations per epoch
(GluonCV's way of counting an epoch). A run shorter than its warm-up ends on
the way up, as GluonCV's does.

The data stream, however, carries the remainder of an epoch into the next
(MXNet's ``ImageRecordIter`` with ``round_batch``, which the released run
used; :class:`~gluon_asymmnet.data.ImageBatches` here): epoch ``e``
holds the batches that start inside it, so the optimizer has made
``ceil(e * N / B)`` updates before epoch ``e`` begins. That is why the rate the
released log printed at epoch ``e``, batch 599 is the schedule's value at
update ``ceil(e * 1281167 / 2048) + 600`` (docs/design.md section 5).
"""
import mxnet as mx
from gluoncv.utils import LRScheduler, LRSequential

from .config import ConfigError

__all__ = ['iters_per_epoch', 'build_lr_scheduler', 'server_lr_scheduler', 'updates_before_epoch',
           'batches_in_epoch']


def iters_per_epoch(num_samples, global_batch):
    """Iterations per epoch as the schedule counts them: ``num_samples // global_batch``."""
    if num_samples < global_batch:
        raise ConfigError('%d training images are fewer than one global batch of %d '
                          '(--batch-size x devices x workers): lower --batch-size'
                          % (num_samples, global_batch))
    return num_samples // global_batch


def build_lr_scheduler(lr, lr_mode, num_epochs, iters, warmup_epochs=0, decay_epochs=(), decay_factor=0.1,
                       warmup_lr=0.0):
    """The per-iteration schedule ``train_imagenet.py`` builds, without touching any device.

    Parameters
    ----------
    lr : float
        Peak rate, reached at the end of the warm-up.
    lr_mode : {'step', 'poly', 'cosine', 'linear', 'constant'}
        Schedule after the warm-up (poly: power 2), down to 0 (constant: at ``lr``).
    num_epochs : int
        Epochs of the whole run, warm-up included.
    iters : int
        Iterations per epoch, :func:`iters_per_epoch` (625 for ImageNet-1k at 2048).
    warmup_epochs : int
        Epochs of linear warm-up from 0.
    decay_epochs : sequence of int
        Step mode: epochs, counted from the start of training, at which the rate is multiplied
        by ``decay_factor``.
    warmup_lr : float
        Rate at the start of the warm-up.

    Returns
    -------
    gluoncv.utils.LRSequential
        Called with the optimizer's update count (1 after the first update).
    """
    # GluonCV counts step epochs from the start of training; the main
    # scheduler starts after the warm-up.
    steps = [e - warmup_epochs for e in decay_epochs]
    main_epochs = max(0, num_epochs - warmup_epochs)
    return LRSequential([
        LRScheduler(_mode('linear', warmup_epochs * iters), base_lr=warmup_lr, target_lr=lr, nepochs=warmup_epochs,
                    iters_per_epoch=iters),
        LRScheduler(_mode(lr_mode, main_epochs * iters), base_lr=lr, target_lr=0, nepochs=main_epochs,
                    iters_per_epoch=iters, step_epoch=steps, step_factor=decay_factor, power=2),
    ])


def _mode(mode, updates):
    """A phase of one update runs at its start rate in every mode; GluonCV's divides by ``updates - 1`` = 0."""
    return 'constant' if updates == 1 else mode


def server_lr_scheduler(lr, lr_mode, num_epochs, iters, warmup_epochs=0, decay_epochs=(), decay_factor=0.1,
                        warmup_lr=0.0):
    """The schedule for ``dist_async``, built from MXNet's own scheduler classes.

    Under ``dist_async`` the servers update the weights, so the optimizer and
    its schedule are pickled to them; a server unpickles while MXNet itself is
    still being imported and cannot import GluonCV (or anything built on
    ``mxnet.gluon``), so only ``mxnet.lr_scheduler`` classes can travel. Every
    push is one update there, so an epoch is ``num_samples // batch`` updates
    with one worker's batch (``iters``). After the warm-up the rates equal
    :func:`build_lr_scheduler`'s (cosine, poly, linear, step); during the
    warm-up MXNet ramps over ``W`` updates where GluonCV ramps over ``W - 1``
    (a difference of at most ``lr / W``). Arguments as :func:`build_lr_scheduler`.
    """
    warmup = warmup_epochs * iters
    last = num_epochs * iters - 1   # GluonCV reaches the final rate one update before the end
    common = dict(base_lr=lr, warmup_steps=warmup, warmup_begin_lr=warmup_lr, warmup_mode='linear')
    if lr_mode == 'constant' or warmup >= last:
        return mx.lr_scheduler.FactorScheduler(step=1, factor=1.0, **common)
    if lr_mode == 'cosine':
        return mx.lr_scheduler.CosineScheduler(max_update=last, final_lr=0, **common)
    if lr_mode in ('poly', 'linear'):
        return mx.lr_scheduler.PolyScheduler(max_update=last, pwr=2 if lr_mode == 'poly' else 1, final_lr=0,
                                             **common)
    # MXNet decays once the update count exceeds a step; GluonCV once it reaches it.
    steps = [warmup + (e - warmup_epochs) * iters - 1 for e in decay_epochs if e < num_epochs]
    if not steps:
        return mx.lr_scheduler.FactorScheduler(step=1, factor=1.0, **common)
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=decay_factor, **common)


def updates_before_epoch(epoch, num_samples, global_batch):
    """Optimizer updates made before ``epoch`` starts when remainders carry over: ``ceil(e*N/B)``."""
    return -(-epoch * num_samples // global_batch)


def batches_in_epoch(epoch, num_samples, global_batch):
    """Batches that start inside ``epoch`` (alternately ``N // B`` and ``N // B + 1``)."""
    return (updates_before_epoch(epoch + 1, num_samples, global_batch)
            - updates_before_epoch(epoch, num_samples, global_batch))
