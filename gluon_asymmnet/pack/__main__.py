"""``python -m gluon_asymmnet.pack ROOT PREFIX``: pack class folders into RecordIO (see :mod:`gluon_asymmnet.data.pack`)."""
import sys

from ..data.pack import main

sys.exit(main())
