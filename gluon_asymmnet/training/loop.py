"""The training loop of ``train_imagenet.py``: GluonCV's recipe, resumable exactly, on one or many machines.

One call of :func:`train` runs the whole job: data (checked before anything
trains), network, optimizer (Nesterov SGD with GluonCV's per-iteration
schedule), epochs with the released log's line formats, validation through
:func:`gluon_asymmnet.metrics.evaluate_accuracy`, atomic checkpoints, the
TensorBoard scalars and the curve plot.

Determinism: initialisation is seeded with ``--seed``; the data order and
augmentation are pure functions of (seed, epoch, shard) in the data pipeline;
dropout is re-seeded at every epoch from (seed, epoch, rank) and mixup's
weight is drawn from (seed, epoch, batch, rank). A run resumed from the
checkpoint of epoch k therefore repeats, bit for bit on CPU, what the
uninterrupted run does from epoch k + 1.

Distributed (``--kvstore dist_*``): every worker reads its own shard of the
training and validation data. With ``dist_sync``/``dist_device_sync`` the
gradients are summed on the servers and each worker applies the same update
locally (``update_on_kvstore=False``), so the optimizer state is local and
checkpointable; BatchNorm running statistics are averaged over the workers at
the end of every epoch, so all workers hold identical parameters, and the
validation counts of the shards are summed into the full-set figure.
``dist_async`` updates on the servers (MXNet requires it); its optimizer
state cannot be saved and rank 0 validates the whole validation set alone.
Only rank 0 writes checkpoints, the log file, TensorBoard scalars and the plot.
"""
import hashlib
import math
import os
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..checkpoint import CheckpointError, load_checkpoint
from ..data import demo_dataset, get_data_loaders
from ..metrics import evaluate_accuracy
from ..model_zoo import get_model
from .checkpointing import (MODEL_KEYS, best_stem, latest_checkpoint, load_meta, periodic_stem,
                            save_checkpoint)
from .logs import (BATCH_FMT, SPEED_FMT, TRAIN_FMT, VAL_FMT, ScalarWriter, close_logger, progress_bar,
                   setup_logger)
from .options import ConfigError, use_demo_data
from .plot import plot_curve
from .schedule import build_lr_scheduler, global_batch_size, server_lr_scheduler
from .targets import build_loss, build_teacher, mix, mixup_lambda, smooth_labels, SMOOTHING_ETA

__all__ = ['TrainingDiverged', 'contexts', 'build_network', 'zero_last_gamma', 'disable_bn_bias_wd',
           'build_data', 'parameter_digest', 'train']


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names epoch, batch and the last good checkpoint."""


def contexts(opt):
    """``[gpu(0), ..., gpu(n-1)]`` for ``--num-gpus n``, else ``[cpu()]``."""
    if opt.num_gpus > 0:
        available = mx.context.num_gpus()
        if available < opt.num_gpus:
            raise ConfigError('--num-gpus %d: this machine has %d GPU(s)' % (opt.num_gpus, available))
        return [mx.gpu(i) for i in range(opt.num_gpus)]
    return [mx.cpu()]


def zero_last_gamma(net):
    """Zero the last BatchNorm gamma (``conv2.bn``) of every residual bottleneck; return their names.

    A residual block then starts as the identity (Goyal et al., 2017). Blocks
    without a residual add keep their gamma: zeroing it would cut the signal.
    """
    names = []
    for block in net.blocks:
        if block.residual:
            gamma = block.conv2.bn.gamma
            gamma.set_data(mx.nd.zeros(gamma.shape, dtype=gamma.dtype))
            names.append(gamma.name)
    return names


def disable_bn_bias_wd(net):
    """``wd_mult = 0`` on BatchNorm gamma/beta and every bias (``--no-wd``); return their names."""
    params = net.collect_params('.*gamma|.*beta|.*bias')
    params.setattr('wd_mult', 0.0)
    return sorted(params.keys())


def build_network(opt, ctx):
    """The network of ``--model``/``--width-scale``/``--asymmrate``/``--shuffle-group``/``--dropout``.

    Initialised with MSRAPrelu from ``--seed`` (then ``--last-gamma``), or loaded
    from ``--resume-params`` (any layout :func:`gluon_asymmnet.load_checkpoint`
    reads, e.g. the released checkpoint), and cast to ``--dtype``.
    """
    kwargs = dict(multiplier=opt.width_scale, classes=opt.classes, dropout=opt.dropout)
    if opt.model.startswith('asymmnet'):
        kwargs.update(asymmrate=opt.asymmrate, shuffle_groups=opt.shuffle_group)
    try:
        net = get_model(opt.model, **kwargs)
    except ValueError as err:
        raise ConfigError('--model %s: %s' % (opt.model, err))
    mx.random.seed(opt.seed)
    net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    if opt.resume_params:
        try:
            load_checkpoint(net, opt.resume_params, ctx=ctx)
        except CheckpointError as err:
            raise ConfigError('--resume-params: %s' % err)
    elif opt.last_gamma:
        zero_last_gamma(net)
    if opt.no_wd:
        disable_bn_bias_wd(net)
    net.cast(opt.dtype)
    return net


def build_data(opt, num_parts=1, part_index=0, train=True, val=True, val_parts=None, val_index=None):
    """Train and validation batches for the options (the bundled digits without data flags).

    Parameters
    ----------
    opt : argparse.Namespace
    num_parts, part_index : int
        Training shard of this worker.
    train, val : bool
        Build training / validation batches (``None`` in their place otherwise).
    val_parts, val_index : int, optional
        Validation shard (default: the training one).

    Raises
    ------
    gluon_asymmnet.data.DataError
        Naming a missing or unreadable file, before anything trains.
    """
    kwargs = dict(batch_size=opt.batch_size * max(1, opt.num_gpus), num_workers=opt.num_workers,
                  input_size=opt.input_size, crop_ratio=opt.crop_ratio, seed=opt.seed, dtype=opt.dtype)
    if use_demo_data(opt):
        demo = demo_dataset()
        files = dict(rec_train=demo['rec_train'], rec_train_idx=demo['rec_train_idx'],
                     rec_val=demo['rec_val'], rec_val_idx=demo['rec_val_idx'])
        kwargs.update(demo['augment'])
    else:
        files = dict(rec_train=opt.rec_train, rec_train_idx=opt.rec_train_idx, rec_val=opt.rec_val,
                     rec_val_idx=opt.rec_val_idx, data_dir=opt.data_dir)
    train_batches = val_batches = None
    if train:
        train_batches = get_data_loaders(num_parts=num_parts, part_index=part_index, train=True, val=False,
                                         **files, **kwargs)[0]
    if val:
        vp, vi = (num_parts, part_index) if val_parts is None else (val_parts, val_index)
        val_batches = get_data_loaders(num_parts=vp, part_index=vi, train=False, val=True, **files, **kwargs)[1]
    return train_batches, val_batches


def parameter_digest(net):
    """SHA-1 over every parameter's name and bytes, running statistics included.

    Workers of a ``dist_sync`` run log it at the end: equal digests mean
    identical networks.
    """
    h = hashlib.sha1()
    params = net._collect_params_with_prefix()
    for name in sorted(params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(params[name].data(params[name].list_ctx()[0]).asnumpy()).tobytes())
    return h.hexdigest()


def _finite(arrays):
    """True when every element of ``arrays`` is finite (one fused reduction per device, one sync)."""
    by_ctx = {}
    for a in arrays:
        by_ctx.setdefault(a.context, []).append(a)
    total = sum(float(mx.nd.multi_sum_sq(*group, num_arrays=len(group)).sum().asscalar())
                for group in by_ctx.values())
    return math.isfinite(total)


def _epoch_seed(seed, epoch, rank):
    return (seed * 1000003 + epoch * 7919 + rank * 104729 + 1) % (2 ** 31 - 1)


class _Distributed:
    """Rank, worker count and the collective operations of a run (trivial on one machine)."""

    def __init__(self, kvstore):
        self.kv = None
        self.rank, self.num_workers = 0, 1
        self.sync = False
        if kvstore.startswith('dist'):
            if 'DMLC_ROLE' not in os.environ:
                raise ConfigError('--kvstore %s needs the DMLC_* environment of a distributed launch '
                                  '(DMLC_ROLE, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER, '
                                  'DMLC_NUM_WORKER); start it with the launcher' % kvstore)
            self.kv = mx.kv.create(kvstore)
            self.rank, self.num_workers = self.kv.rank, self.kv.num_workers
            self.sync = 'async' not in kvstore
        self._count_key = None

    @property
    def update_on_kvstore(self):
        return self.kv is not None and not self.sync

    def average_aux(self, net, trainer):
        """Average BatchNorm running statistics over the workers (keys: the trainer's own)."""
        if self.kv is None or not self.sync or self.num_workers == 1:
            return
        index = {p.name: i for i, p in enumerate(trainer._params)}
        for name, param in net.collect_params('.*running_mean|.*running_var').items():
            arrays = param.list_data()
            self.kv.pushpull(index[name], arrays[0], out=arrays)
            for a in arrays:
                a /= self.num_workers

    def sum_counts(self, values, trainer):
        """Element-wise sum of a small float vector over the workers."""
        arr = mx.nd.array(values, dtype='float64')
        if self.kv is None or not self.sync or self.num_workers == 1:
            return arr.asnumpy()
        if self._count_key is None:
            self._count_key = len(trainer._params)
            self.kv.init(self._count_key, mx.nd.zeros(arr.shape, dtype='float64'))
        self.kv.pushpull(self._count_key, arr, out=arr)
        return arr.asnumpy()


def _resume_point(opt, train_batches, dist):
    """(start epoch, updates so far, best top-1, best epoch, best params, history, states file)."""
    if opt.resume is not None:
        path = latest_checkpoint(opt.save_dir) if opt.resume == 'latest' else opt.resume
        if path is None:
            raise ConfigError('--resume: no complete checkpoint (.params, .states and .json) in --save-dir %s'
                              % opt.save_dir)
        meta = load_meta(path)
        saved = meta.get('config', {})
        for key in MODEL_KEYS:
            if key in saved and saved[key] != getattr(opt, key):
                raise ConfigError('--resume %s: the checkpoint was trained with %s=%r, this run has %r'
                                  % (path, key, saved[key], getattr(opt, key)))
        opt.resume_params = meta['params_path']
        return dict(epoch=int(meta['epoch']) + 1, num_update=int(meta['num_update']),
                    best_top1=float(meta['best_top1']), best_epoch=meta.get('best_epoch'),
                    best_params=meta.get('best_params'), history=list(meta.get('history', [])),
                    states=meta['states_path'], source=meta['params_path'])
    start = opt.resume_epoch
    return dict(epoch=start, num_update=sum(train_batches.batches_in_epoch(e) for e in range(start)),
                best_top1=0.0, best_epoch=None, best_params=None, history=[],
                states=opt.resume_states or None, source=opt.resume_params or None)


def _log_file(opt):
    return opt.logging_file if os.path.isabs(opt.logging_file) else os.path.join(opt.save_dir, opt.logging_file)


def train(opt, loaders=None, stop_after=None):
    """Train as ``train_imagenet.py`` does.

    Parameters
    ----------
    opt : argparse.Namespace
        From :func:`gluon_asymmnet.training.parse_args`.
    loaders : (train_batches, val_batches), optional
        Use these instead of building them from the data flags. The train
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
        Bad options or data, before training starts.
    TrainingDiverged
        On a NaN or infinite loss.
    """
    dist = _Distributed(opt.kvstore)
    ctx = contexts(opt)
    rank0 = dist.rank == 0
    if rank0:
        os.makedirs(opt.save_dir, exist_ok=True)
    logger = setup_logger(_log_file(opt) if rank0 else None, dist.rank)
    own_loaders = loaders is None
    scalars = None
    try:
        logger.info(opt)
        if own_loaders:
            if dist.kv is not None and not dist.sync:
                # dist_async cannot sum counts over workers: rank 0 validates everything.
                loaders = build_data(opt, dist.num_workers, dist.rank, val=rank0, val_parts=1, val_index=0)
            else:
                loaders = build_data(opt, dist.num_workers, dist.rank)
        train_batches, val_batches = loaders
        total = len(train_batches.source) if hasattr(train_batches, 'source') else \
            train_batches.num_samples * dist.num_workers
        if dist.update_on_kvstore:
            # dist_async: the servers count every worker's pushes, and can only unpickle MXNet's schedulers.
            scheduler, count_scale = server_lr_scheduler(opt, total), dist.num_workers
        else:
            scheduler, count_scale = build_lr_scheduler(opt, total, dist.num_workers), 1
        resume = _resume_point(opt, train_batches, dist)
        net = build_network(opt, ctx)
        if opt.mode == 'hybrid':
            net.hybridize(static_alloc=True, static_shape=True)
        teacher = build_teacher(opt, ctx) if opt.teacher else None
        optimizer_params = {'wd': opt.wd, 'momentum': opt.momentum, 'lr_scheduler': scheduler}
        if opt.dtype != 'float32':
            optimizer_params['multi_precision'] = True
        trainer = gluon.Trainer(net.collect_params(), 'nag', optimizer_params,
                                kvstore=dist.kv if dist.kv is not None else opt.kvstore,
                                update_on_kvstore=dist.update_on_kvstore)
        num_update = resume['num_update']
        if resume['states']:
            if dist.update_on_kvstore:
                logger.info('optimizer states %s are not loaded: under dist_async they live on the servers'
                            % resume['states'])
            else:
                try:
                    trainer.load_states(resume['states'])
                except Exception as err:  # a foreign or truncated pickle: name the file
                    raise ConfigError('cannot load optimizer states %s: %s' % (resume['states'], err))
                trainer.optimizer.lr_scheduler = scheduler
                num_update = trainer.optimizer.num_update if opt.resume is None else num_update
        trainer.optimizer.begin_num_update = trainer.optimizer.num_update = num_update * count_scale
        if dist.update_on_kvstore:
            # The servers' optimizer is unpickled without its param_dict: key the multipliers by index.
            for i, param in enumerate(net.collect_params().values()):
                trainer.optimizer.wd_mult[i], trainer.optimizer.lr_mult[i] = param.wd_mult, param.lr_mult
        if resume['source']:
            logger.info('resuming from %s at epoch %d, update %d' % (resume['source'], resume['epoch'], num_update))

        grads = [g for p in net.collect_params().values() if p.grad_req != 'null' for g in p.list_grad()]
        step_batch = global_batch_size(opt, dist.num_workers if dist.sync else 1)
        local_batch = opt.batch_size * max(1, opt.num_gpus)
        loss_fn = build_loss(opt)
        train_metric = mx.metric.RMSE() if opt.mixup else mx.metric.Accuracy()
        eta = SMOOTHING_ETA if opt.label_smoothing else 0.0
        scalars = ScalarWriter(opt.save_dir, enabled=rank0)
        best = dict(top1=resume['best_top1'], epoch=resume['best_epoch'], params=resume['best_params'])
        history = resume['history']
        skipped_total = 0
        last_ckpt = resume['source'] if opt.resume is not None else None
        config = {k: getattr(opt, k) for k in MODEL_KEYS}
        config.update(global_batch=global_batch_size(opt, dist.num_workers), num_samples=total, seed=opt.seed)

        for epoch in range(resume['epoch'], opt.num_epochs):
            mx.random.seed(_epoch_seed(opt.seed, epoch, dist.rank))
            train_batches.set_epoch(epoch)
            num_batches = train_batches.batches_in_epoch(epoch)
            skipped_before = train_batches.skipped
            train_metric.reset()
            train_loss, seen = 0.0, 0
            tic = btic = time.time()
            bar = progress_bar(num_batches, 'epoch %d' % epoch) if rank0 else None
            for i, (data, label) in enumerate(train_batches):
                datas = gluon.utils.split_and_load(data, ctx, even_split=False)
                labels = gluon.utils.split_and_load(label, ctx, even_split=False)
                hard = labels
                if opt.mixup:
                    lam = mixup_lambda(opt, epoch, i, dist.rank)
                    mixed = [mix(x, y, lam, opt.classes, eta) for x, y in zip(datas, labels)]
                    datas, labels = [m[0] for m in mixed], [m[1] for m in mixed]
                elif opt.label_smoothing:
                    labels = [smooth_labels(y, opt.classes) for y in labels]
                datas = [x.astype(opt.dtype, copy=False) for x in datas]
                if teacher is not None:
                    soft = [mx.nd.softmax(teacher(x) / opt.temperature) for x in datas]
                with autograd.record():
                    outputs = [net(x) for x in datas]
                    if teacher is not None:
                        losses = [loss_fn(o, y.astype(opt.dtype, copy=False), p)
                                  for o, y, p in zip(outputs, labels, soft)]
                    else:
                        losses = [loss_fn(o, y.astype(opt.dtype, copy=False)) for o, y in zip(outputs, labels)]
                autograd.backward(losses)
                batch_loss = sum(float(l.astype('float32').sum().asscalar()) for l in losses)
                # ReLU and clip can turn NaN activations into finite outputs while the
                # gradients stay NaN, so both are checked before the update is applied.
                problem = ('the loss is %s' % batch_loss if not math.isfinite(batch_loss)
                           else None if _finite(grads) else 'the gradient is not finite (loss %g)' % batch_loss)
                if problem:
                    raise TrainingDiverged(
                        'training diverged: %s at epoch %d, batch %d (update %d, lr %g); stopped before '
                        'applying it. Last good checkpoint: %s'
                        % (problem, epoch, i, num_update + 1, scheduler((num_update + 1) * count_scale),
                           last_ckpt or 'none written yet'))
                trainer.step(step_batch)
                num_update += 1
                train_loss += batch_loss
                seen += label.shape[0]
                if opt.mixup:
                    train_metric.update(labels, [mx.nd.softmax(o.astype('float32', copy=False)) for o in outputs])
                else:
                    train_metric.update(hard, [o.astype('float32', copy=False) for o in outputs])
                if bar is not None:
                    bar.update(1)
                if opt.log_interval and not (i + 1) % opt.log_interval:
                    name, value = train_metric.get()
                    logger.info(BATCH_FMT % (epoch, i, local_batch * opt.log_interval / (time.time() - btic),
                                             name, value, scheduler(num_update * count_scale)))
                    btic = time.time()
            if bar is not None:
                bar.close()
            train_time = time.time() - tic
            metric_name, metric_value = train_metric.get()
            skipped = train_batches.skipped - skipped_before
            skipped_total += skipped

            dist.average_aux(net, trainer)
            top1 = top5 = float('nan')
            if val_batches is not None:
                val = evaluate_accuracy(net, val_batches, ctx)
                counts = dist.sum_counts([val['top1'] * val['num_samples'], val['top5'] * val['num_samples'],
                                          val['num_samples']], trainer)
                top1, top5 = counts[0] / counts[2], counts[1] / counts[2]
            elapsed = time.time() - tic

            logger.info(TRAIN_FMT % (epoch, metric_name, metric_value))
            logger.info(SPEED_FMT % (epoch, int(seen / train_time), elapsed))
            if val_batches is not None:
                logger.info(VAL_FMT % (epoch, top1, top5))
            if skipped:
                logger.info('[Epoch %d] skipped %d corrupt record(s)' % (epoch, skipped))
            lr = scheduler(num_update * count_scale)
            scalars.add(epoch, learning_rate=lr, train_loss=train_loss / max(seen, 1),
                        validation_acc=top1, validation_acc_top5=top5,
                        **{'train_rmse' if opt.mixup else 'train_acc': metric_value})
            history.append(dict(epoch=epoch, top1=top1, top5=top5, train_metric=metric_value, lr=lr,
                                num_update=num_update, speed=seen / train_time, time=elapsed, skipped=skipped))

            if rank0:
                meta = dict(epoch=epoch, num_update=num_update, history=history, config=config)
                states = not dist.update_on_kvstore
                if top1 > best['top1']:
                    stem = best_stem(top1, opt.dataset, opt.model, epoch)
                    best.update(top1=top1, epoch=epoch, params=stem + '.params')
                    meta.update(best_top1=best['top1'], best_epoch=best['epoch'], best_params=best['params'])
                    last_ckpt = save_checkpoint(opt.save_dir, stem, net, trainer, meta, states)['params']
                meta.update(best_top1=best['top1'], best_epoch=best['epoch'], best_params=best['params'])
                periodic = opt.save_frequency and (
                    (epoch + 1) % opt.save_frequency == 0 or epoch == opt.num_epochs - 1)
                if periodic:
                    stem = periodic_stem(opt.dataset, opt.model, epoch)
                    last_ckpt = save_checkpoint(opt.save_dir, stem, net, trainer, meta, states)['params']
            if stop_after is not None and epoch >= stop_after:
                break

        plot = None
        finished = not history or history[-1]['epoch'] == opt.num_epochs - 1
        if rank0 and history and finished:
            plot = os.path.join(opt.save_dir, '%s-%s-top1.png' % (opt.dataset, opt.model))
            plot_curve(history, plot, '%s x%g on %s: validation top-1' % (opt.model, opt.width_scale, opt.dataset),
                       reference=opt.dataset == 'imagenet')
        if rank0 and best['epoch'] is not None:
            logger.info('best validation top-1 %f at epoch %d: %s'
                        % (best['top1'], best['epoch'], os.path.join(opt.save_dir, best['params'])))
        if skipped_total:
            logger.info('skipped %d corrupt record(s) in total' % skipped_total)
        digest = parameter_digest(net)
        logger.info('final parameters: sha1 %s (%d epochs, %d updates)' % (digest, len(history), num_update))
        return dict(history=history, best_top1=best['top1'], best_epoch=best['epoch'],
                    best_params=os.path.join(opt.save_dir, best['params']) if best['params'] else None,
                    num_update=num_update, net=net, digest=digest, save_dir=opt.save_dir,
                    log_file=_log_file(opt) if rank0 else None, plot=plot, skipped=skipped_total,
                    rank=dist.rank)
    finally:
        if scalars is not None:
            scalars.close()
        if own_loaders and loaders is not None:
            for batches in loaders:
                if batches is not None and hasattr(batches, 'close'):
                    batches.close()
        close_logger(logger)

