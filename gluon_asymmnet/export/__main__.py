"""``python -m gluon_asymmnet.export``: the command line of :mod:`gluon_asymmnet.export.cli`."""
import sys

from .cli import main

sys.exit(main())
