"""A run's set-up from its :class:`TrainConfig`: data, network, learning-rate schedule, trainer, objective.

Each function turns the configuration into one object the loop uses; the
helpers they call (:mod:`.schedule`, :mod:`.losses`, :func:`zero_last_gamma`,
...) take explicit arguments.
"""
import mxnet as mx
from mxnet import gluon

from ..checkpoint import CheckpointError, load_checkpoint
from ..data import demo_dataset, get_data_loaders
from ..model_zoo import get_model, takes_feature_reuse
from .config import ConfigError
from .losses import TrainingObjective, build_teacher
from .schedule import build_lr_scheduler, iters_per_epoch, server_lr_scheduler

__all__ = ['zero_last_gamma', 'disable_bn_bias_wd', 'build_network', 'build_data', 'build_loaders',
           'lr_scheduler', 'build_trainer', 'build_objective']


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


def build_network(cfg, ctx, params=None):
    """The network of ``model``/``width_scale``/``asymmrate``/``shuffle_group``/``dropout``.

    Initialised with MSRAPrelu from ``seed`` (then ``last_gamma``), or loaded
    from ``params`` (default ``cfg.resume_params``; any layout
    :func:`gluon_asymmnet.load_checkpoint` reads, e.g. the released
    checkpoint), and cast to ``dtype``.
    """
    params = params or cfg.resume_params
    kwargs = dict(multiplier=cfg.width_scale, classes=cfg.classes, dropout=cfg.dropout)
    if takes_feature_reuse(cfg.model):
        kwargs.update(asymmrate=cfg.asymmrate, shuffle_groups=cfg.shuffle_group)
    try:
        net = get_model(cfg.model, **kwargs)
    except ValueError as err:
        raise ConfigError('--model %s: %s' % (cfg.model, err))
    mx.random.seed(cfg.seed)
    net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    if params:
        try:
            load_checkpoint(net, params, ctx=ctx)
        except CheckpointError as err:
            raise ConfigError('--resume-params: %s' % err)
    elif cfg.last_gamma:
        zero_last_gamma(net)
    if cfg.no_wd:
        disable_bn_bias_wd(net)
    net.cast(cfg.dtype)
    return net


def build_data(cfg, num_parts=1, part_index=0, train=True, val=True, val_parts=None, val_index=None):
    """Train and validation batches of the configuration (the bundled digits without data options).

    Parameters
    ----------
    cfg : TrainConfig
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
    kwargs = dict(batch_size=cfg.device_batch, num_workers=cfg.num_workers, input_size=cfg.input_size,
                  crop_ratio=cfg.crop_ratio, seed=cfg.seed, dtype=cfg.dtype)
    if cfg.demo_data:
        demo = demo_dataset()
        files = dict(rec_train=demo['rec_train'], rec_train_idx=demo['rec_train_idx'],
                     rec_val=demo['rec_val'], rec_val_idx=demo['rec_val_idx'])
        kwargs.update(demo['augment'])
    else:
        files = dict(rec_train=cfg.rec_train, rec_train_idx=cfg.rec_train_idx, rec_val=cfg.rec_val,
                     rec_val_idx=cfg.rec_val_idx, data_dir=cfg.data_dir)
    train_batches = val_batches = None
    if train:
        train_batches = get_data_loaders(num_parts=num_parts, part_index=part_index, train=True, val=False,
                                         **files, **kwargs)[0]
    if val:
        vp, vi = (num_parts, part_index) if val_parts is None else (val_parts, val_index)
        val_batches = get_data_loaders(num_parts=vp, part_index=vi, train=False, val=True, **files, **kwargs)[1]
    return train_batches, val_batches


def build_loaders(cfg, cluster):
    """This worker's shards: its part of the training and validation data.

    Under ``dist_async`` the validation counts cannot be summed over the
    workers, so rank 0 validates the whole set and the others none.
    """
    if cluster.kv is not None and not cluster.sync:
        return build_data(cfg, cluster.num_workers, cluster.rank, val=cluster.rank == 0, val_parts=1, val_index=0)
    return build_data(cfg, cluster.num_workers, cluster.rank)


def lr_scheduler(cfg, num_samples, num_workers=1, on_servers=False):
    """The learning-rate schedule of ``cfg`` for ``num_samples`` training images.

    Parameters
    ----------
    cfg : TrainConfig
    num_samples : int
        Training images over all workers (1,281,167 for ImageNet-1k).
    num_workers : int
        Workers whose batches make one update (the global batch is
        ``cfg.device_batch * num_workers``).
    on_servers : bool
        MXNet's own scheduler classes, for ``dist_async``
        (:func:`~gluon_asymmnet.training.schedule.server_lr_scheduler`).
    """
    iters = iters_per_epoch(num_samples, cfg.device_batch * num_workers)
    build = server_lr_scheduler if on_servers else build_lr_scheduler
    return build(cfg.lr, cfg.lr_mode, cfg.num_epochs, iters, warmup_epochs=cfg.warmup_epochs,
                 decay_epochs=cfg.decay_epochs, decay_factor=cfg.lr_decay)


def build_trainer(cfg, net, scheduler, cluster, start, count_scale=1, logger=None):
    """The Nesterov SGD trainer, its state loaded from ``start.states``; returns ``(trainer, num_update)``.

    ``count_scale``: optimizer updates per update of this worker (the
    workers under ``dist_async``, whose servers count every push).
    """
    optimizer_params = {'wd': cfg.wd, 'momentum': cfg.momentum, 'lr_scheduler': scheduler}
    if cfg.dtype != 'float32':
        optimizer_params['multi_precision'] = True
    trainer = gluon.Trainer(net.collect_params(), 'nag', optimizer_params,
                            kvstore=cluster.kv if cluster.kv is not None else cfg.kvstore,
                            update_on_kvstore=cluster.update_on_kvstore)
    num_update = start.num_update
    if start.states:
        if cluster.update_on_kvstore:
            if logger is not None:
                logger.info('optimizer states %s are not loaded: under dist_async they live on the servers'
                            % start.states)
        else:
            try:
                trainer.load_states(start.states)
            except Exception as err:  # a foreign or truncated pickle: name the file
                raise ConfigError('cannot load optimizer states %s: %s' % (start.states, err))
            trainer.optimizer.lr_scheduler = scheduler
            num_update = num_update if start.checkpoint else trainer.optimizer.num_update
    trainer.optimizer.begin_num_update = trainer.optimizer.num_update = num_update * count_scale
    if cluster.update_on_kvstore:
        # The servers' optimizer is unpickled without its param_dict: key the multipliers by index.
        for i, param in enumerate(net.collect_params().values()):
            trainer.optimizer.wd_mult[i], trainer.optimizer.lr_mult[i] = param.wd_mult, param.lr_mult
    return trainer, num_update


def build_objective(cfg, ctx, rank=0):
    """The :class:`~gluon_asymmnet.training.losses.TrainingObjective` of ``cfg`` (its teacher loaded on ``ctx``)."""
    teacher = None
    if cfg.teacher:
        teacher = build_teacher(cfg.teacher, cfg.teacher_params, cfg.classes, ctx, cfg.dtype,
                                hybridize=cfg.mode == 'hybrid')
    return TrainingObjective(cfg.classes, label_smoothing=cfg.label_smoothing, mixup=cfg.mixup,
                             mixup_alpha=cfg.mixup_alpha, mixup_until=cfg.mixup_until, seed=cfg.seed, rank=rank,
                             teacher=teacher, temperature=cfg.temperature, hard_weight=cfg.hard_weight,
                             dtype=cfg.dtype)
