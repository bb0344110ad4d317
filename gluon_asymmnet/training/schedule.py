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
from gluoncv.utils import LRScheduler, LRSequential

from .options import ConfigError, decay_epochs

__all__ = ['global_batch_size', 'iters_per_epoch', 'build_lr_scheduler', 'updates_before_epoch',
           'batches_in_epoch']


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


def updates_before_epoch(epoch, num_samples, global_batch):
    """Optimizer updates made before ``epoch`` starts when remainders carry over: ``ceil(e*N/B)``."""
    return -(-epoch * num_samples // global_batch)


def batches_in_epoch(epoch, num_samples, global_batch):
    """Batches that start inside ``epoch`` (alternately ``N // B`` and ``N // B + 1``)."""
    return (updates_before_epoch(epoch + 1, num_samples, global_batch)
            - updates_before_epoch(epoch, num_samples, global_batch))
