"""The training library behind ``train_imagenet.py`` (GluonCV's recipe for AsymmNet/MobileNetV3)."""
from .checkpointing import atomic_write, best_stem, latest_checkpoint, load_meta, periodic_stem, save_checkpoint
from .loop import (TrainingDiverged, build_data, build_network, disable_bn_bias_wd, parameter_digest, train,
                   zero_last_gamma)
from .options import ConfigError, build_parser, parse_args
from .plot import plot_curve, reference_curve
from .schedule import build_lr_scheduler, global_batch_size, updates_before_epoch
from .targets import build_loss, build_teacher, mix, mixup_lambda, smooth_labels

__all__ = ['ConfigError', 'TrainingDiverged', 'build_parser', 'parse_args', 'train', 'build_network',
           'build_data', 'zero_last_gamma', 'disable_bn_bias_wd', 'parameter_digest', 'build_lr_scheduler',
           'global_batch_size', 'updates_before_epoch', 'build_loss', 'build_teacher', 'mix', 'mixup_lambda',
           'smooth_labels', 'atomic_write', 'best_stem', 'periodic_stem', 'save_checkpoint', 'latest_checkpoint',
           'load_meta', 'plot_curve', 'reference_curve']
