"""gluon_asymmnet: AsymmNet (CVPR 2021 Workshops) and MobileNetV3 for MXNet Gluon."""
from .cpu import set_default_omp_threads

# Before MXNet starts: it would use half of the cores of a machine without hyperthreads (see .cpu).
set_default_omp_threads()

from .asymmnet import AsymmNet, asymmnet_large, asymmnet_small, mobilenetv3_large, mobilenetv3_small
from .block import AsymmBottleneck
from .checkpoint import CheckpointError, load_checkpoint
from .export import export
from .data import DataError, demo_dataset, folder_batches, get_data_loaders
from .metrics import evaluate_accuracy
from .features import FeatureExtractor, get_feature_extractor
from .model_store import ModelStoreError, get_model_file, pretrained_entries
from .model_zoo import get_model, get_model_list
from .complexity import profile

__version__ = '0.1.0'

