"""``python -m gluon_asymmnet.pack``, the RecordIO packer's command; the packer is :mod:`gluon_asymmnet.data.pack`."""
from ..data.pack import *  # noqa: F401,F403
from ..data.pack import __all__  # noqa: F401
