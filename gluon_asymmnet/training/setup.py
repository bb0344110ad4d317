"""A run's set-up from its :class:`TrainConfig`: data, network, learning-rate schedule, trainer, objective.

Each function turns the configuration into one object the loop uses; the
helpers they call (:mod:`.schedule`, :mod:`.losses`, :func:`zero_last_gamma`,
...) take explicit arguments.
"""
import os
import re
from dataclasses import dataclass
from typing import Optional

import mxnet as mx
from mxnet import gluon

from ..checkpoint import CheckpointError, load_checkpoint
from ..data import demo_dataset, get_data_loaders
from ..data.pixels import set_max_image_pixels
from ..files import not_a_file
from ..finetune import freeze_stages, keep_bn_stats, load_pretrained, set_backbone_lr_mult
from ..model_store import ModelStoreError, get_model_file
from ..model_zoo import get_model, pretrained_entry
from ..run_meta import read_run_info
from .config import ConfigError
from .losses import TrainingObjective, build_teacher
from .run_state import load_trainer_states
from .schedule import build_lr_scheduler, iters_per_epoch, server_lr_scheduler

__all__ = ['zero_last_gamma', 'disable_bn_bias_wd', 'FinetunePlan', 'finetune_plan', 'build_network', 'build_data',
           'build_loaders', 'lr_scheduler', 'build_trainer', 'build_objective']

# Default learning-rate multiplier of the pretrained layers under a new classifier.
NEW_HEAD_BACKBONE_LR_MULT = 0.1


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


@dataclass(frozen=True)
class FinetunePlan:
    """Where fine-tuning starts and how: decided once from the files, the same when a run resumes."""
    source: str                      # the parameter file
    layout: Optional[str]            # forced layout (store entries), or None to detect
    new_head: bool                   # the classifier starts anew
    reason: str                      # why the classifier is new or kept
    backbone_lr_mult: float
    freeze_stages: int
    bn_stats: str

    def describe(self):
        return ('fine-tuning from %s: %s; backbone learning rate %g x --lr; %s; BatchNorm statistics %s'
                % (self.source, self.reason, self.backbone_lr_mult,
                   'stages 1-%d frozen' % self.freeze_stages if self.freeze_stages else 'no stage frozen',
                   'kept (pretrained)' if self.bn_stats == 'keep' else 'trained on the new data'))


def _finetune_source(cfg):
    if cfg.finetune_from:
        path = os.path.expanduser(cfg.finetune_from)
        what = not_a_file(path)
        if what:
            raise ConfigError('--finetune-from %s: %s' % (cfg.finetune_from, 'no such parameter file' if what ==
                                                           'does not exist' else '%s, not a parameter file' % what))
        return path, None
    tag = None if cfg.pretrained == 'store' else cfg.pretrained
    if tag is not None and not re.fullmatch('[0-9a-fA-F]{4,40}', tag):
        raise ConfigError('--pretrained %s: give no value (the store\'s weights for this model and width) or a '
                          'hash prefix of 4 to 40 hex digits; for a file use --finetune-from' % tag)
    try:
        entry = pretrained_entry(cfg.model, tag or True, ignore=('classes',), **cfg.model_kwargs)
        return get_model_file(entry), entry.layout
    except (ValueError, ModelStoreError) as err:
        raise ConfigError('--pretrained: %s' % err)


def finetune_plan(cfg, class_names=None):
    """The :class:`FinetunePlan` of a run with ``pretrained`` or ``finetune_from`` (None without).

    The classifier starts anew when the file's does not fit (another class
    count) or when the file's run recorded other class names than
    ``class_names`` (the data's); the backbone's default learning-rate
    multiplier is 0.1 then, 1 otherwise.
    """
    if not cfg.finetune:
        return None
    source, layout = _finetune_source(cfg)
    try:
        info = read_run_info(source)
    except ValueError:
        info = None
    if info and info.class_names and class_names and list(info.class_names) != list(class_names):
        new_head, reason = True, 'a new classifier for %d classes (the file\'s run had other classes: %s)' % (
            cfg.classes, ', '.join(info.class_names[:5]) + (', ...' if len(info.class_names) > 5 else ''))
    else:
        probe = get_model(cfg.model, **cfg.model_kwargs)
        try:
            load_checkpoint(probe, source, layout=layout)
            new_head, reason = False, 'the file\'s classifier kept (%d classes)' % cfg.classes
        except CheckpointError:
            new_head, reason = True, 'a new classifier for %d classes' % cfg.classes
    mult = cfg.backbone_lr_mult
    if mult is None:
        mult = NEW_HEAD_BACKBONE_LR_MULT if new_head else 1.0
    return FinetunePlan(source=source, layout=layout, new_head=new_head, reason=reason, backbone_lr_mult=mult,
                        freeze_stages=cfg.freeze_stages, bn_stats=cfg.bn_stats)


def build_network(cfg, ctx, params=None, plan=None, logger=None):
    """The network of ``model`` and its constructor arguments (:attr:`TrainConfig.model_kwargs`).

    Initialised with MSRAPrelu from ``seed``, then loaded from ``params``
    (default ``cfg.resume_params``; any layout
    :func:`gluon_asymmnet.load_checkpoint` reads, e.g. the released
    checkpoint), else from the fine-tuning ``plan``'s file (a new classifier
    keeps its seeded initialisation), else ``last_gamma`` applies. The plan's
    learning-rate multiplier, frozen stages and BatchNorm choice apply either
    way (a resumed fine-tuning run trains as it started). Cast to ``dtype``.
    """
    params = params or cfg.resume_params
    try:
        net = get_model(cfg.model, **cfg.model_kwargs)
    except ValueError as err:
        raise ConfigError('--model %s: %s' % (cfg.model, err))
    mx.random.seed(cfg.seed)
    net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    if params:
        try:
            load_checkpoint(net, params, ctx=ctx)
        except CheckpointError as err:
            raise ConfigError('%s: %s' % ('--resume' if cfg.resume else '--resume-params', err))
    elif plan is not None:
        try:
            load_pretrained(net, plan.source, ctx=ctx, layout=plan.layout, new_head=plan.new_head,
                            logger=_Silent() if logger is None else logger)
        except CheckpointError as err:
            raise ConfigError('%s: %s' % ('--finetune-from' if cfg.finetune_from else '--pretrained', err))
    elif cfg.last_gamma:
        zero_last_gamma(net)
    if plan is not None:
        if plan.bn_stats == 'keep':
            keep_bn_stats(net.features)
        freeze_stages(net, plan.freeze_stages)
        set_backbone_lr_mult(net, plan.backbone_lr_mult)
    if cfg.no_wd:
        disable_bn_bias_wd(net)
    net.cast(cfg.dtype)
    return net


class _Silent:
    """A logger that drops the line (the training log describes the plan itself)."""

    def warning(self, *args):
        pass


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

    Every label must be a class index of ``cfg.classes`` (checked on a few
    records here, then on each record as it is read).

    Raises
    ------
    gluon_asymmnet.data.DataError
        Naming a missing or unreadable file, a file of nothing but corrupt
        records, or a record whose label is not a class index, before
        anything trains.
    """
    set_max_image_pixels(cfg.max_image_pixels)  # before the DataLoader workers fork
    kwargs = dict(batch_size=cfg.device_batch, num_workers=cfg.num_workers, input_size=cfg.input_size,
                  crop_ratio=cfg.crop_ratio, seed=cfg.seed, dtype=cfg.dtype, mean=cfg.rgb_mean, std=cfg.rgb_std,
                  num_classes=cfg.classes)
    if cfg.demo_data:
        demo = demo_dataset()
        files = dict(rec_train=demo['rec_train'], rec_train_idx=demo['rec_train_idx'],
                     rec_val=demo['rec_val'], rec_val_idx=demo['rec_val_idx'])
        kwargs.update(demo['augment'])
    else:
        files = dict(rec_train=cfg.rec_train, rec_train_idx=cfg.rec_train_idx, rec_val=cfg.rec_val,
                     rec_val_idx=cfg.rec_val_idx, data_dir=cfg.data_dir, image_folder=cfg.image_folder,
                     val_fraction=cfg.val_fraction, split_seed=cfg.split_seed)
    if cfg.min_random_area is not None:
        kwargs['crop_area'] = (cfg.min_random_area, 1.0)
    if cfg.no_mirror:
        kwargs['mirror'] = False
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
                 decay_epochs=cfg.decay_epochs, decay_factor=cfg.lr_decay, warmup_lr=cfg.warmup_lr)


def build_trainer(cfg, net, scheduler, cluster, start, count_scale=1, logger=None):
    """The Nesterov SGD trainer, its state loaded from ``start.states``; returns ``(trainer, num_update)``.

    ``count_scale``: optimizer updates per update of this worker (the
    workers under ``dist_async``, whose servers count every push). Under a
    ``dist_*`` kvstore every worker holds rank 0's parameters on return
    (:meth:`Cluster.broadcast_parameters`).
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
            load_trainer_states(trainer, start.states, start.states_sha256)
            trainer.optimizer.lr_scheduler = scheduler
            num_update = num_update if start.checkpoint else trainer.optimizer.num_update
    trainer.optimizer.begin_num_update = trainer.optimizer.num_update = num_update * count_scale
    if cluster.update_on_kvstore:
        # The servers' optimizer is unpickled without its param_dict: key the multipliers by index.
        for i, param in enumerate(net.collect_params().values()):
            trainer.optimizer.wd_mult[i], trainer.optimizer.lr_mult[i] = param.wd_mult, param.lr_mult
    cluster.broadcast_parameters(trainer)
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
