"""The learning-rate schedule and the update counting it assumes.

The schedule is GluonCV's ``LRSequential``: linear warm-up from 0 to ``--lr``
over ``--warmup-epochs``, then ``--lr-mode`` down to 0, updated every
iteration, with ``num_samples // global_batch`` iterations per epoch
(GluonCV's way of counting an epoch).

The data stream, however, carries the remainder of an epoch into the next
(MXNet's ``ImageRecordIter`` with ``round_batch``, which the released run
used; :class:`~gluon_asymmnet.training.stream.BatchStream` here): epoch ``e``
holds the batches that start inside it, so the optimizer has made
``ceil(e * N / B)`` updates before epoch ``e`` begins. That is why the rate the
released log printed at epoch ``e``, batch 599 is the schedule's value at
update ``ceil(e * 1281167 / 2048) + 600`` (DESIGN.md section 5).
"""
import mxnet as mx
from gluoncv.utils import LRScheduler, LRSequential

from .options import ConfigError, decay_epochs

__all__ = ['global_batch_size', 'iters_per_epoch', 'build_lr_scheduler', 'server_lr_scheduler',
           'updates_before_epoch', 'batches_in_epoch']


def global_batch_size(opt, num_workers=1):
    """Images per optimizer update over all devices and workers."""
    return opt.batch_size * max(1, opt.num_gpus) * num_workers


def iters_per_epoch(num_samples, global_batch):
    """Iterations per epoch as the schedule counts them: ``num_samples // global_batch``."""
    if num_samples < global_batch:
        raise ConfigError('%d training images are fewer than one global batch of %d '
                          '(--batch-size x devices x workers): lower --batch-size'
                          % (num_samples, global_batch))
    return num_samples // global_batch


def build_lr_scheduler(opt, num_samples, num_workers=1):
    """The per-iteration schedule ``train_imagenet.py`` builds, without touching any device.

    Parameters
    ----------
    opt : argparse.Namespace
        Options from :func:`~gluon_asymmnet.training.options.parse_args`
        (``lr``, ``lr_mode``, ``num_epochs``, ``warmup_epochs``, ``lr_decay*``,
        ``batch_size``, ``num_gpus``).
    num_samples : int
        Training images over all workers (1,281,167 for ImageNet-1k).
    num_workers : int
        Distributed workers (kvstore ``num_workers``).

    Returns
    -------
    gluoncv.utils.LRSequential
        Called with the optimizer's update count (1 after the first update).
    """
    iters = iters_per_epoch(num_samples, global_batch_size(opt, num_workers))
    # GluonCV counts step epochs from the start of training; the main
    # scheduler starts after the warm-up.
    steps = [e - opt.warmup_epochs for e in decay_epochs(opt)]
    return LRSequential([
        LRScheduler('linear', base_lr=0, target_lr=opt.lr, nepochs=opt.warmup_epochs, iters_per_epoch=iters),
        LRScheduler(opt.lr_mode, base_lr=opt.lr, target_lr=0, nepochs=opt.num_epochs - opt.warmup_epochs,
                    iters_per_epoch=iters, step_epoch=steps, step_factor=opt.lr_decay, power=2),
    ])


def server_lr_scheduler(opt, num_samples):
    """The schedule for ``dist_async``, built from MXNet's own scheduler classes.

    Under ``dist_async`` the servers update the weights, so the optimizer and
    its schedule are pickled to them; a server unpickles while MXNet itself is
    still being imported and cannot import GluonCV (or anything built on
    ``mxnet.gluon``), so only ``mxnet.lr_scheduler`` classes can travel. Every
    push is one update there, so an epoch is ``num_samples // batch`` updates
    with this worker's batch. After the warm-up the rates equal
    :func:`build_lr_scheduler`'s (cosine, poly, linear, step); during the
    warm-up MXNet ramps over ``W`` updates where GluonCV ramps over ``W - 1``
    (a difference of at most ``lr / W``).
    """
    iters = iters_per_epoch(num_samples, global_batch_size(opt))
    warmup = opt.warmup_epochs * iters
    last = opt.num_epochs * iters - 1   # GluonCV reaches the final rate one update before the end
    common = dict(base_lr=opt.lr, warmup_steps=warmup, warmup_begin_lr=0, warmup_mode='linear')
    if opt.lr_mode == 'cosine':
        return mx.lr_scheduler.CosineScheduler(max_update=last, final_lr=0, **common)
    if opt.lr_mode in ('poly', 'linear'):
        return mx.lr_scheduler.PolyScheduler(max_update=last, pwr=2 if opt.lr_mode == 'poly' else 1, final_lr=0,
                                             **common)
    # MXNet decays once the update count exceeds a step; GluonCV once it reaches it.
    steps = [warmup + (e - opt.warmup_epochs) * iters - 1 for e in decay_epochs(opt) if e < opt.num_epochs]
    if not steps:
        return mx.lr_scheduler.FactorScheduler(step=1, factor=1.0, **common)
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=opt.lr_decay, **common)


def updates_before_epoch(epoch, num_samples, global_batch):
    """Optimizer updates made before ``epoch`` starts when remainders carry over: ``ceil(e*N/B)``."""
    return -(-epoch * num_samples // global_batch)


def batches_in_epoch(epoch, num_samples, global_batch):
    """Batches that start inside ``epoch`` (alternately ``N // B`` and ``N // B + 1``)."""
    return (updates_before_epoch(epoch + 1, num_samples, global_batch)
            - updates_before_epoch(epoch, num_samples, global_batch))
