"""Every published parameter-file layout, and one loader for all of them.

Layouts (DESIGN.md section 6):

- ``released``: the authors' released checkpoint; Gluon structural keys with
  block children ``expand``, ``conv1``, ``se``, ``conv2``. The project's own
  files (``save_parameters``) and GluonCV's MobileNetV3 files use the same keys.
- ``authors-code``: what the authors' public model code saves; the depthwise
  unit is ``dw_conv`` and the linear unit ``pw_conv_linear``.
"""
import os

import mxnet as mx

__all__ = ['CheckpointError', 'LAYOUTS', 'load_checkpoint']


class CheckpointError(ValueError):
    """A parameter file that cannot be loaded into the given network."""


def _rename(pairs):
    def convert(key):
        for old, new in pairs:
            key = key.replace(old, new)
        return key
    return convert


# Layout name -> function mapping a file key to the network's structural key.
LAYOUTS = {
    'released': _rename(()),
    'authors-code': _rename((('.dw_conv.', '.conv1.'), ('.pw_conv_linear.', '.conv2.'))),
}


def detect_layout(keys):
    """Name the layout of a set of file keys."""
    if any('.dw_conv.' in k or '.pw_conv_linear.' in k for k in keys):
        return 'authors-code'
    return 'released'


def load_checkpoint(net, path, ctx=None, layout=None):
    """Load a parameter file of any known layout into ``net``, all or nothing.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        The network to fill.
    path : str
        The parameter file.
    ctx : Context or list of Context, optional
        Where the parameters live (default: CPU).
    layout : str, optional
        Force a layout from :data:`LAYOUTS` instead of detecting it.

    Returns
    -------
    str
        The name of the layout used.
    """
    if not os.path.isfile(path):
        raise CheckpointError('%s: no such parameter file' % path)
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise CheckpointError('%s: not an MXNet parameter file (%s)' % (path, str(err).splitlines()[0]))
    if not isinstance(loaded, dict) or not loaded:
        raise CheckpointError('%s: holds no named parameters' % path)
    name = layout or detect_layout(loaded)
    if name not in LAYOUTS:
        raise CheckpointError('unknown layout %r; known: %s' % (name, ', '.join(sorted(LAYOUTS))))
    convert = LAYOUTS[name]
    arrays = {convert(k): v for k, v in loaded.items()}
    params = net._collect_params_with_prefix()
    for key, param in params.items():
        if key not in arrays:
            raise CheckpointError('%s (layout %s): missing parameter %s of shape %s'
                                  % (path, name, key, param.shape))
        if param.shape and 0 not in param.shape and tuple(arrays[key].shape) != tuple(param.shape):
            raise CheckpointError('%s (layout %s): parameter %s has shape %s, the network expects %s'
                                  % (path, name, key, tuple(arrays[key].shape), tuple(param.shape)))
    extra = sorted(set(arrays) - set(params))
    if extra:
        raise CheckpointError('%s (layout %s): unexpected parameter %s (of %d not in the network)'
                              % (path, name, extra[0], len(extra)))
    ctx = ctx or mx.cpu()
    for key, param in params.items():
        param._load_init(arrays[key].astype(param.dtype), ctx, cast_dtype=True, dtype_source='current')
    return name
