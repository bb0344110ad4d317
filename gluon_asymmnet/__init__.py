"""gluon_asymmnet: AsymmNet (CVPR 2021 Workshops), MobileNetV3 and MobileNetV2 for MXNet Gluon.

Importing the package loads nothing and changes nothing in the process: each
name below (and each submodule) loads its module, and MXNet, on first use.
So a command line can set MXNet's OpenMP threads before MXNet starts
(:func:`gluon_asymmnet.cpu.configure_omp_threads`).
"""
import importlib
import importlib.util
import sys
import types

__version__ = '0.1.0'

# Public name -> the module that defines it.
_EXPORTS = {
    'AsymmNet': 'asymmnet', 'asymmnet_large': 'asymmnet', 'asymmnet_small': 'asymmnet',
    'mobilenetv3_large': 'asymmnet', 'mobilenetv3_small': 'asymmnet',
    'MobileNetV2': 'mobilenetv2', 'mobilenetv2': 'mobilenetv2', 'mobilenetv2_asymm': 'mobilenetv2',
    'AsymmBottleneck': 'block',
    'CheckpointError': 'checkpoint', 'load_checkpoint': 'checkpoint',
    'deploy_network': 'deploy',
    'export': 'export',
    'DataError': 'data', 'demo_dataset': 'data', 'folder_batches': 'data', 'get_data_loaders': 'data',
    'evaluate_accuracy': 'metrics',
    'FeatureExtractor': 'features', 'get_feature_extractor': 'model_zoo',
    'ModelStoreError': 'model_store', 'get_model_file': 'model_store', 'pretrained_entries': 'model_store',
    'get_model': 'model_zoo', 'get_model_list': 'model_zoo',
    'profile': 'complexity',
    'predict': 'prediction', 'Prediction': 'prediction',
    'set_default_omp_threads': 'cpu',
    'register_with_gluoncv': 'with_gluoncv',
}
__all__ = sorted(_EXPORTS)


class _Package(types.ModuleType):
    """This package's module object: loads names on first use."""

    def __getattr__(self, name):
        if name in _EXPORTS:
            value = getattr(importlib.import_module('.' + _EXPORTS[name], __name__), name)
        elif not name.startswith('__') and importlib.util.find_spec('%s.%s' % (__name__, name)) is not None:
            value = importlib.import_module('.' + name, __name__)
        else:
            raise AttributeError('module %r has no attribute %r' % (__name__, name))
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name, value):
        # Importing the subpackage gluon_asymmnet.export binds it to its name here; the name is the function.
        if name == 'export' and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_EXPORTS))


sys.modules[__name__].__class__ = _Package
