"""What a training run records beside each checkpoint: the model, its classes and its preprocessing.

Every checkpoint ``<stem>.params`` written by ``train_imagenet.py`` has a
``<stem>.json`` (:mod:`gluon_asymmnet.training.run_state`) whose ``config``
holds the :data:`RUN_KEYS`. ``eval.py`` and ``python -m
gluon_asymmnet.export`` read it (:func:`read_run_info`), so a checkpoint of
your own data needs no model, class or preprocessing flags, and the class
names travel with the weights. The keys are the shared flags' names
(:mod:`gluon_asymmnet.model_flags`); what a run of an older release did not
record is the model's default from the registry.
"""
import json
import os
from collections import namedtuple

from .model_flags import model_dests, model_kwargs, preprocess_config, preprocess_dests
from .model_zoo import get_model_spec

__all__ = ['RUN_KEYS', 'VAL_DATA_KEYS', 'RunInfo', 'val_data', 'read_run_info']

# Saved in every checkpoint's .json (under "config"), named as TrainConfig's fields and the shared flags.
RUN_KEYS = model_dests() + ('dataset', 'class_names') + preprocess_dests()
# Where the run's validation images are (under "config"/"val_data"): get_data_loaders arguments, {} for the digits.
VAL_DATA_KEYS = ('rec_val', 'rec_val_idx', 'data_dir', 'image_folder', 'val_fraction', 'split_seed')


class RunInfo(namedtuple('RunInfo', 'model kwargs class_names input_size crop_ratio mean std dataset val_data '
                                    'path')):
    """A checkpoint's network (``model``, ``get_model`` ``kwargs``), class names by label, preprocessing
    (``input_size``, ``crop_ratio``, RGB ``mean``/``std`` on the 0-255 scale), data name, its validation
    data (:data:`VAL_DATA_KEYS`), and the ``.json`` it was read from. Preprocessing a run of an older
    release did not record is the model's default; other things it did not record are None."""

    @property
    def preprocess_config(self):
        """The run's preprocessing as a :class:`~gluon_asymmnet.preprocessing.PreprocessConfig`."""
        return get_model_spec(self.model).preprocess.replace(input_size=self.input_size, crop_ratio=self.crop_ratio,
                                                             mean=self.mean, std=self.std)


def val_data(values):
    """The :data:`VAL_DATA_KEYS` of a configuration (a dict of its fields), paths made absolute."""
    data = {}
    for key in VAL_DATA_KEYS:
        value = values.get(key)
        if value is not None and key in ('rec_val', 'rec_val_idx', 'data_dir', 'image_folder'):
            value = os.path.abspath(os.path.expanduser(value))
        if value is not None:
            data[key] = value
    if not any(k in data for k in ('rec_val', 'data_dir', 'image_folder')):
        return {}
    if 'image_folder' not in data:
        data.pop('val_fraction', None)
        data.pop('split_seed', None)
    return data


def read_run_info(params_path):
    """The :class:`RunInfo` of a checkpoint, from the ``.json`` beside its ``.params``; None without one.

    Raises
    ------
    ValueError
        The ``.json`` exists but does not describe the network (naming the file and the key).
    """
    path = os.path.splitext(os.fspath(params_path))[0] + '.json'
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            config = json.load(f)['config']
        # Older runs recorded asymmrate/shuffle_group for MobileNetV3 too, where they never reached the network.
        kwargs = model_kwargs(config['model'], config, lenient=True)
        if 'classes' not in kwargs:
            raise KeyError('classes')
        pre = preprocess_config(config, get_model_spec(config['model']).preprocess)
        info = RunInfo(model=config['model'], kwargs=kwargs, class_names=config.get('class_names'),
                       input_size=pre.input_size, crop_ratio=pre.crop_ratio, mean=pre.mean, std=pre.std,
                       dataset=config.get('dataset'), val_data=config.get('val_data'), path=path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError('%s: not the description of a checkpoint of train_imagenet.py (%s: %s)'
                         % (path, type(err).__name__, err)) from None
    if info.class_names is not None and len(info.class_names) > info.kwargs['classes']:
        raise ValueError('%s: lists %d class names for a network of %d classes'
                         % (path, len(info.class_names), info.kwargs['classes']))
    return info
