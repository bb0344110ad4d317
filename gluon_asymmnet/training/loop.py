"""The training loop of ``train_imagenet.py`` in phases: set-up, ``train_one_epoch``, ``evaluate``, checkpoints.

One call of :func:`train` runs the whole job: data (checked before anything
trains), network, optimizer (Nesterov SGD with GluonCV's per-iteration
schedule), epochs with the released log's line formats, validation through
:func:`gluon_asymmnet.metrics.evaluate_accuracy`, atomic checkpoints, the
TensorBoard scalars and the curve plot.

Determinism: initialisation is seeded with ``seed``; the data order and
augmentation are pure functions of (seed, epoch, shard) in the data pipeline;
dropout is re-seeded at every epoch from (seed, epoch, rank) and mixup's
weight is drawn from (seed, epoch, batch, rank). A run resumed from the
checkpoint of epoch k therefore repeats, bit for bit on CPU, what the
uninterrupted run does from epoch k + 1.

Distributed (``kvstore='dist_*'``, :mod:`.distributed`): every worker reads
its own shard of the training and validation data; under ``dist_async`` the
optimizer state stays on the servers, out of the checkpoints, and rank 0
validates the whole validation set alone. Only rank 0 writes checkpoints, the
log file, TensorBoard scalars and the plot.
"""
import dataclasses
import math
import os
import time
from dataclasses import dataclass

import mxnet as mx
from mxnet import autograd, gluon

from ..data import DataError
from ..files import folder_problem
from ..memory import MemoryEstimateError, check_step_fits
from ..metrics import evaluate_accuracy
from .distributed import Cluster, contexts, parameter_digest
from .logs import (BATCH_FMT, SPEED_FMT, TRAIN_FMT, VAL_FMT, ScalarWriter, close_logger, log_to_file, progress_bar,
                   setup_logger)
from .plot import plot_curve
from ..run_meta import RUN_KEYS, val_data
from .config import ConfigError
from .interrupts import RunInterrupted, signal_of
from .run_lock import RunLock
from .run_state import (MODEL_KEYS, CheckpointWriter, clean_interrupted_saves, data_signature, remove_run,
                        resume_point, run_folder, run_in_folder, run_settings, weights_only)
from .schedule import updates_before_epoch
from .setup import build_loaders, build_network, build_objective, build_trainer, finetune_plan, lr_scheduler

__all__ = ['TrainingDiverged', 'EpochResult', 'train_one_epoch', 'evaluate', 'train']


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names epoch, batch and the last good checkpoint."""


@dataclass
class EpochResult:
    """What one training epoch did."""
    metric: tuple        # (name, value) of the training metric
    loss: float          # summed loss over the samples seen
    seen: int            # training samples
    seconds: float       # training time (validation excluded)
    num_update: int      # updates made so far in the run
    skipped: int         # corrupt records skipped in this epoch


def _finite(arrays):
    """True when every element of ``arrays`` is finite (one fused reduction per device, one sync)."""
    by_ctx = {}
    for a in arrays:
        by_ctx.setdefault(a.context, []).append(a)
    total = sum(float(mx.nd.multi_sum_sq(*group, num_arrays=len(group)).sum().asscalar())
                for group in by_ctx.values())
    return math.isfinite(total)


def _number(value):
    return value if math.isfinite(value) else None


def _epoch_seed(seed, epoch, rank):
    return (seed * 1000003 + epoch * 7919 + rank * 104729 + 1) % (2 ** 31 - 1)


def train_one_epoch(net, trainer, objective, batches, epoch, ctx, step_batch, num_update, lr_at,
                    log_interval=0, logger=None, progress=False, last_checkpoint=None):
    """Train ``net`` on one epoch of ``batches``.

    Parameters
    ----------
    net, trainer
        The network and its :class:`mxnet.gluon.Trainer`.
    objective : TrainingObjective
        Targets, loss and training metric.
    batches
        Training batches (``set_epoch``, ``batches_in_epoch``, ``skipped``,
        ``batch_size`` as :class:`gluon_asymmnet.data.ImageBatches`).
    epoch : int
    ctx : list of mxnet.Context
        Each batch is split over these devices.
    step_batch : int
        Images one update averages over (all devices, and all workers under ``dist_sync``).
    num_update : int
        Updates made before this epoch.
    lr_at : callable
        ``num_update -> learning rate`` (for the log and the divergence message).
    log_interval : int
        Log a ``Epoch[e] Batch [i]`` line every this many batches (0: never).
    logger : logging.Logger, optional
    progress : bool
        Draw a progress bar (on terminals).
    last_checkpoint : str, optional
        Named by the divergence message.

    Returns
    -------
    EpochResult

    Raises
    ------
    TrainingDiverged
        On a NaN or infinite loss or gradient, before that update is applied.
    """
    grads = [g for p in net.collect_params().values() if p.grad_req != 'null' for g in p.list_grad()]
    batches.set_epoch(epoch)
    skipped_before = batches.skipped
    metric = objective.new_metric()
    total_loss, seen = 0.0, 0
    tic = btic = time.time()
    bar = progress_bar(batches.batches_in_epoch(epoch), 'epoch %d' % epoch) if progress else None
    done = 0
    try:
        for i, (data, label) in enumerate(batches):
            datas = gluon.utils.split_and_load(data, ctx, even_split=False)
            labels = gluon.utils.split_and_load(label, ctx, even_split=False)
            inputs, targets, soft = objective.batch(datas, labels, epoch, i)
            with autograd.record():
                outputs = [net(x) for x in inputs]
                losses = objective.losses(outputs, targets, soft)
            autograd.backward(losses)
            batch_loss = sum(float(l.astype('float32').sum().asscalar()) for l in losses)
            # ReLU and clip can turn NaN activations into finite outputs while the
            # gradients stay NaN, so both are checked before the update is applied.
            problem = ('the loss is %s' % batch_loss if not math.isfinite(batch_loss)
                       else None if _finite(grads) else 'the gradient is not finite (loss %g)' % batch_loss)
            if problem:
                raise TrainingDiverged(
                    'training diverged: %s at epoch %d, batch %d (update %d, lr %g); stopped before '
                    'applying it. Last good checkpoint: %s' % (problem, epoch, i, num_update + 1,
                                                               lr_at(num_update + 1),
                                                               last_checkpoint or 'none written yet'))
            trainer.step(step_batch)
            num_update += 1
            total_loss += batch_loss
            seen += label.shape[0]
            objective.update_metric(metric, labels, targets, outputs)
            if bar is not None:
                bar.update(1)
            if log_interval and not (i + 1) % log_interval and logger is not None:
                name, value = metric.get()
                logger.info(BATCH_FMT % (epoch, i, batches.batch_size * log_interval / (time.time() - btic), name,
                                         value, lr_at(num_update)))
                btic = time.time()
            done = i + 1
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the run's message says how far the epoch got
        stop.batches = (done, batches.batches_in_epoch(epoch))
        raise
    if bar is not None:
        bar.close()
    return EpochResult(metric=metric.get(), loss=total_loss, seen=seen, seconds=time.time() - tic,
                       num_update=num_update, skipped=batches.skipped - skipped_before)


def evaluate(net, batches, ctx, cluster=None, trainer=None):
    """Validation ``(top1, top5)`` of ``net`` on ``batches``, summed over the workers of ``cluster``.

    ``trainer``: the run's trainer, whose kvstore keys the worker sum follows.
    """
    val = evaluate_accuracy(net, batches, ctx)
    counts = [val['top1'] * val['num_samples'], val['top5'] * val['num_samples'], val['num_samples']]
    if cluster is not None:
        counts = cluster.sum_counts(counts, trainer)
    return counts[0] / counts[2], counts[1] / counts[2]


def _log_file(cfg):
    return cfg.logging_file if os.path.isabs(cfg.logging_file) else os.path.join(cfg.save_dir, cfg.logging_file)


def _data_class_names(cfg, batches):
    """The training data's class names by label (None when it records none), checked against ``classes``."""
    names = getattr(batches, 'class_names', None)
    if names is not None and len(names) > cfg.classes:
        raise ConfigError('the training data has %d classes (%s, ...) but the network %d outputs: drop --classes '
                          '%d or the --dataset that sets it' % (len(names), ', '.join(names[:3]), cfg.classes,
                                                               cfg.classes))
    return list(names) if names is not None else None


def _schedule_notes(cfg, logger, total, scheduler, global_batch):
    if cfg.num_training_samples and cfg.num_training_samples != total:
        logger.warning('warning: --num-training-samples %d: the schedule counts %d images per epoch, the training data holds '
                       '%d' % (cfg.num_training_samples, cfg.num_training_samples, total))
    if cfg.warmup_longer_than_run:
        end = scheduler(updates_before_epoch(cfg.num_epochs, cfg.num_training_samples or total, global_batch))
        logger.warning('warning: --warmup-epochs %d is not shorter than the run (--num-epochs %d): the learning rate '
                       'reaches %g (--lr %g) and the --lr-mode %s schedule never starts (as in GluonCV)'
                       % (cfg.warmup_epochs, cfg.num_epochs, end, cfg.lr, cfg.lr_mode))


def _check_memory(cfg, net, ctx):
    """Refuse a training step that cannot fit in memory, before the first one is killed trying."""
    try:
        check_step_fits(net, cfg.batch_size, cfg.input_size, ctx[0], True,
                        'a training step of %s' % cfg.model_label,
                        'lower --batch-size or --input-size')
    except MemoryEstimateError as err:
        raise ConfigError(str(err)) from None


def _dry_run(net, cfg, ctx, logger):
    """The authors' speed test: ``dry_run`` forward passes of one image, timed after one untimed call."""
    x = mx.nd.random.normal(0, 1, shape=(1, 3, cfg.input_size, cfg.input_size), ctx=ctx[0], dtype=cfg.dtype)
    net(x).wait_to_read()
    tic = time.time()
    for _ in range(cfg.dry_run):
        net(x)
    mx.nd.waitall()
    logger.info('dry run: %d forward passes of one %dx%d image, %.6f ms each'
                % (cfg.dry_run, cfg.input_size, cfg.input_size, (time.time() - tic) * 1000. / cfg.dry_run))


def _log_epoch(logger, scalars, epoch, result, top1, top5, lr, seconds, validated, mixup):
    metric_name, metric_value = result.metric
    logger.info(TRAIN_FMT % (epoch, metric_name, metric_value))
    logger.info(SPEED_FMT % (epoch, int(result.seen / result.seconds), seconds))
    if validated:
        logger.info(VAL_FMT % (epoch, top1, top5))
    if result.skipped:
        logger.info('[Epoch %d] skipped %d corrupt record(s)' % (epoch, result.skipped))
    scalars.add(epoch, learning_rate=lr, train_loss=result.loss / max(result.seen, 1),
                validation_acc=top1, validation_acc_top5=top5,
                **{'train_rmse' if mixup else 'train_acc': metric_value})


def train(cfg, loaders=None, stop_after=None):
    """Train as ``train_imagenet.py`` does.

    Parameters
    ----------
    cfg : TrainConfig
        From :func:`gluon_asymmnet.training.parse_args` or
        :func:`gluon_asymmnet.training.train_recipe`.
    loaders : (train_batches, val_batches), optional
        Use these instead of building them from the data options. The train
        batches need ``set_epoch``, ``batches_in_epoch``, ``batch_size``,
        ``num_samples`` and ``skipped`` as :class:`gluon_asymmnet.data.ImageBatches`.
    stop_after : int, optional
        Return after this epoch as if the run had been killed there (its
        checkpoints written, no final plot).

    Returns
    -------
    dict
        ``history`` (one dict per epoch: epoch, top1, top5, train metric, lr,
        num_update, speed, time), ``best_top1``, ``best_epoch``,
        ``best_params`` (path), ``num_update``, ``net``, ``digest``
        (:func:`parameter_digest`), ``save_dir``,
        ``log_file``, ``plot`` (path or None), ``skipped``, ``rank``.

    Raises
    ------
    ConfigError, gluon_asymmnet.data.DataError
        Bad options or data, before training starts (an unwritable
        ``save_dir``, one in use by another run, a refused resume); or
        validation data that fails after an epoch (the epoch is saved first).
    TrainingDiverged
        On a NaN or infinite loss.
    SaveError
        A checkpoint cannot be written (a full disk is named as such).
    """
    cluster = Cluster(cfg.kvstore)
    ctx = contexts(cfg.num_gpus)
    rank0 = cluster.rank == 0
    if cfg.tag_name:
        cfg = dataclasses.replace(cfg, save_dir=run_folder(cfg.save_dir, cfg.dataset, cfg.model, cfg.tag_name,
                                                           cfg.resume))
    if not rank0:
        return _train(cfg, cluster, ctx, loaders, stop_after)
    folders = [('--save-dir', cfg.save_dir, cfg.save_dir)]
    if os.path.abspath(os.path.dirname(_log_file(cfg))) != os.path.abspath(cfg.save_dir):
        folders.append(('--logging-file', cfg.logging_file, os.path.dirname(_log_file(cfg))))
    for flag, value, folder in folders:
        problem = folder_problem(folder)
        if problem:
            raise ConfigError('%s %s: %s; give a folder you can write to' % (flag, value, problem))
    with RunLock(cfg.save_dir):
        left = clean_interrupted_saves(cfg.save_dir)
        notes = ['removed what an interrupted run left of a checkpoint it was writing: %s'
                 % ', '.join(os.path.basename(p) for p in left)] if left else []
        return _train(cfg, cluster, ctx, loaders, stop_after, notes + _claim_folder(cfg))


def _claim_folder(cfg):
    """Refuse a --save-dir holding another run's checkpoints for a new run, unless --overwrite removes them.

    Returns the notes for the run's log (what --overwrite removed).
    """
    new_run = cfg.resume is None or weights_only(cfg.resume)   # weights alone start at epoch 0
    if not new_run or cfg.resume_params:
        if cfg.overwrite:
            raise ConfigError('--overwrite starts a new run in place of the one in --save-dir; --resume %s continues '
                              'a run: give one or the other' % cfg.resume)
        return []
    found = run_in_folder(cfg.save_dir)
    if found is None:
        return []
    if not cfg.overwrite:
        # Its same-named checkpoints would be overwritten, and a later --resume would mix the two runs.
        raise ConfigError('--save-dir %s holds the checkpoints of another run (%s): continue it with --resume, start '
                          'anew there with --overwrite (which removes them), or give another --save-dir'
                          % (cfg.save_dir, found))
    return ['--overwrite: removed %s (the checkpoints of the earlier run: %s)' % (', '.join(
        os.path.basename(p) for p in remove_run(cfg.save_dir)), found)]


def _train(cfg, cluster, ctx, loaders, stop_after, notes=()):
    """:func:`train` once the run folder is ready (and held, on rank 0); ``notes`` go to the log first."""
    rank0 = cluster.rank == 0
    logger = setup_logger(_log_file(cfg) if rank0 else None, cluster.rank)
    own_loaders = loaders is None
    scalars = None
    # Where a signal finds the run (its message): the phase and the last complete checkpoint.
    reached = dict(at='the set-up, before training started', last=None, writer=None)
    try:
        logger.info(cfg)
        for note in notes:
            logger.warning('warning: %s' % note)
        # Set-up: data first (a missing file is named before anything is built), then the rest.
        if own_loaders:
            loaders = build_loaders(cfg, cluster)
        train_batches, val_batches = loaders
        total = len(train_batches.source) if hasattr(train_batches, 'source') else \
            train_batches.num_samples * cluster.num_workers
        class_names = _data_class_names(cfg, train_batches)
        schedule_samples = cfg.num_training_samples or total
        if cluster.update_on_kvstore:
            # dist_async: the servers count every worker's pushes, and can only unpickle MXNet's schedulers.
            scheduler, count_scale = lr_scheduler(cfg, schedule_samples, on_servers=True), cluster.num_workers
        else:
            scheduler, count_scale = lr_scheduler(cfg, schedule_samples, cluster.num_workers), 1
        _schedule_notes(cfg, logger, total, scheduler, cfg.device_batch * cluster.num_workers)
        model_config = {k: getattr(cfg, k) for k in MODEL_KEYS}
        settings, data = run_settings(cfg), data_signature(train_batches, val_batches)
        start = resume_point(cfg.save_dir, cfg.resume, model_config, resume_params=cfg.resume_params,
                             resume_states=cfg.resume_states, resume_epoch=cfg.resume_epoch,
                             batches_in_epoch=train_batches.batches_in_epoch, settings=settings, data=data,
                             accept_changes=cfg.resume_with_changes)
        if start.note:
            logger.warning('warning: %s' % start.note)
        reached['last'] = start.params if start.checkpoint else None
        plan = finetune_plan(cfg, class_names)
        if plan is not None:
            logger.info(plan.describe())
        if cfg.last_gamma and (start.params or plan is not None):
            logger.info('--last-gamma has no effect: the weights come from %s' % (start.params or plan.source))
        net = build_network(cfg, ctx, start.params, plan)
        _check_memory(cfg, net, ctx)
        if cfg.mode in ('hybrid', 'symbolic'):
            net.hybridize(static_alloc=True, static_shape=True)
        if cfg.dry_run:
            _dry_run(net, cfg, ctx, logger)
        objective = build_objective(cfg, ctx, cluster.rank)
        trainer, num_update = build_trainer(cfg, net, scheduler, cluster, start, count_scale, logger)
        if start.params:
            logger.info('resuming from %s at epoch %d, update %d' % (start.params, start.epoch, num_update))
        if start.epoch >= cfg.num_epochs:
            logger.info('nothing to train: %s is the checkpoint of epoch %d, the last of --num-epochs %d; a larger '
                        '--num-epochs continues the run' % (start.params, start.epoch - 1, cfg.num_epochs))
        step_batch = cfg.device_batch * (cluster.num_workers if cluster.sync else 1)
        scalars = ScalarWriter(cfg.save_dir, enabled=rank0)
        checkpoints = CheckpointWriter(
            cfg.save_dir, cfg.dataset, cfg.model, cfg.num_epochs, cfg.save_frequency,
            dict({k: getattr(cfg, k) for k in RUN_KEYS if k != 'class_names'}, class_names=class_names,
                 val_data=val_data(dataclasses.asdict(cfg)),
                 global_batch=cfg.device_batch * cluster.num_workers, num_samples=total, seed=cfg.seed,
                 finetune=dataclasses.asdict(plan) if plan is not None else None, settings=settings, data=data),
            save_states=not cluster.update_on_kvstore, start=start)
        reached['writer'] = checkpoints
        history = start.history
        skipped_total = 0

        def lr_at(updates):
            return scheduler(updates * count_scale)

        for epoch in range(start.epoch, cfg.num_epochs):
            mx.random.seed(_epoch_seed(cfg.seed, epoch, cluster.rank))
            reached['at'] = 'epoch %d' % epoch
            tic = time.time()
            result = train_one_epoch(net, trainer, objective, train_batches, epoch, ctx, step_batch, num_update,
                                     lr_at, cfg.log_interval, logger, progress=rank0,
                                     last_checkpoint=checkpoints.last)
            num_update = result.num_update
            skipped_total += result.skipped
            cluster.average_aux(net, trainer)
            top1 = top5 = float('nan')
            failure = None
            if val_batches is not None:
                reached['at'] = 'epoch %d, while validating it' % epoch
                try:
                    top1, top5 = evaluate(net, val_batches, ctx, cluster, trainer)
                except Exception as err:  # reported once the trained epoch is saved
                    failure = err
            seconds = time.time() - tic
            lr = lr_at(num_update)
            _log_epoch(logger, scalars, epoch, result, top1, top5, lr, seconds,
                       val_batches is not None and failure is None, cfg.mixup)
            # None where the epoch was not validated (a run's .json holds no NaN).
            history.append(dict(epoch=epoch, top1=_number(top1), top5=_number(top5), train_metric=result.metric[1],
                                lr=lr, num_update=num_update, speed=result.seen / result.seconds, time=seconds,
                                skipped=result.skipped))
            if rank0:
                reached['at'] = 'epoch %d, while saving its checkpoint (removed, being incomplete)' % epoch
                checkpoints.after_epoch(epoch, top1, net, trainer, num_update, history, validated=failure is None)
            reached['at'] = 'the end of epoch %d' % epoch
            if failure is not None:
                if not isinstance(failure, ValueError):
                    raise failure
                raise DataError('validation after epoch %d failed: %s; the trained epoch is saved (%s): fix the '
                                'validation data and continue with --resume' % (epoch, failure, checkpoints.last))
            if stop_after is not None and epoch >= stop_after:
                break

        plot = None
        finished = not history or history[-1]['epoch'] == cfg.num_epochs - 1
        if rank0 and history and finished:
            plot = os.path.join(cfg.save_dir, '%s-%s-top1.png' % (cfg.dataset, cfg.model))
            plot_curve(history, plot, '%s on %s: validation top-1' % (cfg.model_label, cfg.dataset),
                       reference=cfg.dataset == 'imagenet')
        best_params = os.path.join(cfg.save_dir, checkpoints.best_params) if checkpoints.best_params else None
        if rank0 and checkpoints.best_epoch is not None:
            logger.info('best validation top-1 %f at epoch %d: %s'
                        % (checkpoints.best_top1, checkpoints.best_epoch, best_params))
        if skipped_total:
            logger.info('skipped %d corrupt record(s) in total' % skipped_total)
        digest = parameter_digest(net)
        logger.info('final parameters: sha1 %s (%d epochs, %d updates)' % (digest, len(history), num_update))
        return dict(history=history, best_top1=checkpoints.best_top1, best_epoch=checkpoints.best_epoch,
                    best_params=best_params, num_update=num_update, net=net, digest=digest, save_dir=cfg.save_dir,
                    log_file=_log_file(cfg) if rank0 else None, plot=plot, skipped=skipped_total,
                    rank=cluster.rank)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM under the command line (.interrupts)
        done, total = getattr(stop, 'batches', (None, None))
        where = reached['at'] + (', after %d of its %d batches' % (done, total) if done is not None else '')
        interrupted = RunInterrupted(signal_of(stop), where,
                                     reached['writer'].last if reached['writer'] else reached['last'], cluster.rank)
        log_to_file(logger, interrupted.describe())  # the command line prints it
        raise interrupted from None
    finally:
        if scalars is not None:
            scalars.close()
        if own_loaders and loaders is not None:
            for batches in loaders:
                if batches is not None and hasattr(batches, 'close'):
                    batches.close()
        close_logger(logger)
