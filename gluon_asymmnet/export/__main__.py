"""``python -m gluon_asymmnet.export``: see :func:`gluon_asymmnet.export.main`.

``export`` is a package, not a module, so that the top-level package can
import :func:`export` eagerly without ``python -m`` warning that the module
was imported twice.
"""
import sys

from . import main

sys.exit(main())
