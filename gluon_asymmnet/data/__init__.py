"""Image data: RecordIO/folder sources, GluonCV ImageNet preprocessing, batches, the digits demo."""
from .errors import CorruptRecordWarning, DataError
from .sources import FolderSource, RecordSource
from .transforms import MEAN_RGB, STD_RGB
from .loader import ImageBatches, folder_batches, get_data_loaders
from .digits import demo_dataset

__all__ = ['DataError', 'CorruptRecordWarning', 'RecordSource', 'FolderSource', 'MEAN_RGB',
           'STD_RGB', 'ImageBatches', 'get_data_loaders', 'folder_batches', 'demo_dataset']
