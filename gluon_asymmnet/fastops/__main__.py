"""``python -m gluon_asymmnet.fastops``: build the fused-operator library and print its path."""
import sys

from . import FastOpsError, load

try:
    print(load())
except FastOpsError as err:
    sys.exit('error: %s' % err)
