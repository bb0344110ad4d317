"""The training library behind ``train_imagenet.py`` (GluonCV's recipe for AsymmNet/MobileNetV3).

- :mod:`.config`: :class:`TrainConfig`, the checked configuration (its fields are the script's flags);
- :mod:`.recipes`: the released run and the demo as data (:func:`train_recipe`);
- :mod:`.cli`: argv -> :class:`TrainConfig` (:func:`parse_args`) and the script's exit codes;
  :mod:`.compat`: GluonCV's flags that are not fields (accepted with their meaning, or refused);
- :mod:`.setup`: data, network (and the fine-tuning plan), schedule, trainer and objective from a config;
- :mod:`.loop`: :func:`train` in phases (:func:`train_one_epoch`, :func:`evaluate`);
- :mod:`.schedule`, :mod:`.losses`, :mod:`.distributed`, :mod:`.run_state` (checkpoints and
  resume), :mod:`.logs`, :mod:`.plot`: the parts, with explicit arguments.

Example::

    from gluon_asymmnet.training import train, train_recipe
    result = train(train_recipe('demo', save_dir='runs/demo'))
"""
from .config import ConfigError, TrainConfig, config_argv
from .recipes import RECIPES, recipe_argv, train_recipe
from .cli import build_parser, parse_args
from .setup import (FinetunePlan, build_data, build_network, build_objective, build_trainer, disable_bn_bias_wd,
                    finetune_plan, lr_scheduler, zero_last_gamma)
from .loop import TrainingDiverged, evaluate, train, train_one_epoch
from .distributed import parameter_digest
from .run_state import atomic_write, best_stem, latest_checkpoint, load_meta, periodic_stem, save_checkpoint
from .plot import plot_curve, reference_curve
from .schedule import build_lr_scheduler, updates_before_epoch
from .losses import TrainingObjective, build_loss, build_teacher, mix, mixup_lambda, smooth_labels

__all__ = ['ConfigError', 'TrainConfig', 'config_argv', 'RECIPES', 'train_recipe', 'recipe_argv', 'build_parser',
           'parse_args', 'TrainingDiverged', 'train', 'train_one_epoch', 'evaluate', 'build_network', 'build_data',
           'build_trainer', 'build_objective', 'lr_scheduler', 'zero_last_gamma', 'disable_bn_bias_wd',
           'FinetunePlan', 'finetune_plan',
           'parameter_digest', 'build_lr_scheduler', 'updates_before_epoch', 'TrainingObjective', 'build_loss',
           'build_teacher', 'mix', 'mixup_lambda', 'smooth_labels', 'atomic_write', 'best_stem', 'periodic_stem',
           'save_checkpoint', 'latest_checkpoint', 'load_meta', 'plot_curve', 'reference_curve']
