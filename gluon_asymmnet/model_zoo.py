"""A flat registry of the models, in GluonCV's ``get_model`` manner."""
from .asymmnet import asymmnet_large, asymmnet_small, mobilenetv3_large, mobilenetv3_small

__all__ = ['get_model', 'get_model_list']

_MODELS = {
    'asymmnet_large': asymmnet_large,
    'asymmnet_small': asymmnet_small,
    'mobilenetv3_large': mobilenetv3_large,
    'mobilenetv3_small': mobilenetv3_small,
}


def get_model_list():
    """Names accepted by :func:`get_model`."""
    return sorted(_MODELS)


def get_model(name, **kwargs):
    """Build a model by name.

    Parameters
    ----------
    name : str
        One of :func:`get_model_list`.
    **kwargs
        Passed to the model's constructor (``multiplier``, ``asymmrate``,
        ``shuffle_groups``, ``classes``, ``dropout``).

    Returns
    -------
    AsymmNet
    """
    key = name.lower()
    if key not in _MODELS:
        raise ValueError('unknown model %r; valid names: %s' % (name, ', '.join(get_model_list())))
    return _MODELS[key](**kwargs)
