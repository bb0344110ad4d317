"""Where MXNet and GluonCV keep their files: ``$MXNET_HOME``, default ``~/.mxnet``."""
import os

__all__ = ['mxnet_home']


def mxnet_home(*parts):
    """``$MXNET_HOME`` (``~/.mxnet`` when unset or empty, ``~`` expanded) joined with ``parts``.

    The model store keeps weights in ``models``, the demo dataset lives in
    ``datasets/digits``, the fused operators are built into ``gluon_asymmnet``.
    """
    return os.path.join(os.path.expanduser(os.environ.get('MXNET_HOME') or os.path.join('~', '.mxnet')), *parts)
