"""Training recipes as data: the released AsymmNet-L run and the demo, each a set of :class:`TrainConfig` values.

- ``'released'``: the authors' released AsymmNet-L 1.0 ImageNet run
  (docs/design.md section 5; 75.42 % top-1): 8 GPUs x 256 images (global
  batch 2048), 360 epochs, Nesterov SGD at 2.6 with 5 linear warm-up epochs
  then cosine to 0, weight decay 3e-5 except on BatchNorm and biases, label
  smoothing 0.1, dropout 0.2, 32 data workers. It needs the ImageNet data
  options (``rec_*`` or ``data_dir``).
- ``'demo'``: ``make demo``'s run, AsymmNet-S x0.5 on the bundled digits on
  a CPU (held-out top-1 about 0.98 by epoch 10 of 15).

A recipe lists only what it sets; everything else is :class:`TrainConfig`'s
default. Overriding ``num_epochs`` without ``warmup_epochs`` shortens the
recipe's warm-up to leave at least one epoch of the main schedule; overriding
``model`` drops the recipe's constructor arguments the new model does not
take (the released run's ``asymmrate`` for a MobileNetV3).
"""
from types import MappingProxyType

from ..model_flags import FLAGS
from ..model_zoo import get_model_list, get_model_spec
from .config import ConfigError, TrainConfig, config_argv

__all__ = ['RECIPES', 'recipe_values', 'train_recipe', 'recipe_argv']

RECIPES = MappingProxyType({
    'released': MappingProxyType(dict(
        dataset='imagenet', num_workers=32, model='asymmnet_large', width_scale=1.0, asymmrate=1, dropout=0.2,
        batch_size=256, num_gpus=8, num_epochs=360, lr=2.6, lr_mode='cosine', warmup_epochs=5, momentum=0.9,
        wd=3e-5, no_wd=True, label_smoothing=True, save_dir='params_asymmnet_large')),
    'demo': MappingProxyType(dict(
        num_workers=0, model='asymmnet_small', width_scale=0.5, dropout=0.2, batch_size=64, num_epochs=15,
        lr=0.2, lr_mode='cosine', warmup_epochs=2, wd=1e-4, no_wd=True, save_frequency=0, log_interval=0,
        logging_file='train.log')),
})


def recipe_values(name, **overrides):
    """The field values of recipe ``name`` with ``overrides`` applied (a dict, not yet checked).

    Raises
    ------
    ConfigError
        For an unknown recipe name.
    """
    if name not in RECIPES:
        raise ConfigError('no recipe %r; recipes: %s' % (name, ', '.join(sorted(RECIPES))))
    values = dict(RECIPES[name])
    if 'num_epochs' in overrides and 'warmup_epochs' not in overrides and 'warmup_epochs' in values:
        values['warmup_epochs'] = max(0, min(values['warmup_epochs'], overrides['num_epochs'] - 1))
    if overrides.get('model', values.get('model')) in get_model_list():
        takes = get_model_spec(overrides.get('model', values.get('model'))).arguments
        values = {k: v for k, v in values.items()
                  if k not in FLAGS or FLAGS[k].argument is None or FLAGS[k].argument in takes}
    values.update(overrides)
    return values


def train_recipe(name, **overrides):
    """The :class:`TrainConfig` of recipe ``name``, any field overridden.

    Example: ``train_recipe('released', data_dir='~/imagenet')`` or
    ``train_recipe('demo', model='asymmnet_large', num_epochs=6, save_dir=folder)``.

    Raises
    ------
    ConfigError
        For an unknown recipe or an invalid result (naming the flags).
    """
    return TrainConfig(**recipe_values(name, **overrides))


def recipe_argv(name, **overrides):
    """The ``train_imagenet.py`` arguments of recipe ``name`` with ``overrides``: every value spelled out."""
    return config_argv(recipe_values(name, **overrides))
