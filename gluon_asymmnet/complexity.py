"""Count multiply-accumulates and parameters the way the paper does, and exactly.

Conventions (docs/design.md section 3):

- ``macs``: over every convolution, ``H_out * W_out * C_out * C_in/groups * kh * kw``.
- ``params``: every trainable parameter (BN running statistics excluded).
- ``params_paper``: what the authors' summary tool printed and the paper
  reports: a conv's weights counted as ``C_in/groups * C_out * kh`` (one
  factor of the kernel size), plus biases and BN gamma/beta. It undercounts
  k x k convolutions; report it beside ``params``, never instead of it.
"""
import mxnet as mx
from mxnet.gluon import nn

__all__ = ['profile', 'format_table']


def _named_leaves(block, prefix=''):
    for name, child in block._children.items():
        path = prefix + name
        if child._children:
            yield from _named_leaves(child, path + '.')
        else:
            yield path, child


def profile(net, input_size=224, per_layer=False):
    """Count MACs and parameters of ``net`` for one ``3 x input_size x input_size`` image.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        Any network of convolutions, BatchNorm and parameter-free layers.
    input_size : int
        Input height and width.
    per_layer : bool
        Also return ``layers``: one dict per convolution and BatchNorm with its
        structural name, output shape, MACs, exact and paper-convention params.

    Returns
    -------
    dict
        ``macs``, ``params``, ``params_paper`` (ints) and, on request, ``layers``.
    """
    leaves = [(n, b) for n, b in _named_leaves(net) if isinstance(b, (nn.Conv2D, nn.BatchNorm, nn.Dense))]
    outputs = {}
    # A symbolic call runs every child's forward hook without touching the
    # network's hybridization state or needing initialized parameters.
    handles = [b.register_forward_hook(lambda blk, inp, out, n=n: outputs.__setitem__(n, out))
               for n, b in leaves]
    try:
        net(mx.sym.var('data'))
    finally:
        for h in handles:
            h.detach()
    names = [n for n, _ in leaves]
    _, out_shapes, _ = mx.sym.Group([outputs[n] for n in names]).infer_shape(data=(1, 3, input_size, input_size))
    shapes = dict(zip(names, out_shapes))
    layers = []
    for name, blk in leaves:
        out_shape = shapes[name]
        if isinstance(blk, nn.BatchNorm):
            c = blk.gamma.shape[0]
            row = dict(name=name, kind='BatchNorm', out_shape=out_shape, macs=0, params=2 * c, params_paper=2 * c)
        else:
            w = blk.weight.shape
            bias = blk.bias.shape[0] if blk.bias is not None else 0
            if isinstance(blk, nn.Dense):
                macs, paper = w[0] * w[1], w[0] * w[1]
                kind = 'Dense'
            else:
                c_out, c_in_g, kh, kw = w
                macs = out_shape[2] * out_shape[3] * c_out * c_in_g * kh * kw
                paper = c_out * c_in_g * kh
                kind = 'Conv %dx%d' % (kh, kw) + (' dw' if blk._kwargs['num_group'] > 1 else '')
            row = dict(name=name, kind=kind, out_shape=out_shape, macs=macs,
                       params=_size(w) + bias, params_paper=paper + bias)
        layers.append(row)
    counted = sum(r['params'] for r in layers)
    trainable = sum(_size(p.shape) for p in net.collect_params().values() if p.grad_req != 'null')
    if counted != trainable:
        raise ValueError('profile() counted %d trainable parameters in convolutions and BatchNorm '
                         'but the network has %d: it contains layers the profiler does not know'
                         % (counted, trainable))
    result = dict(macs=sum(r['macs'] for r in layers), params=trainable,
                  params_paper=sum(r['params_paper'] for r in layers))
    if per_layer:
        result['layers'] = layers
    return result


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def format_table(layers):
    """Render ``profile(..., per_layer=True)['layers']`` as aligned text."""
    head = '%-32s %-12s %-18s %14s %10s %12s' % ('layer', 'kind', 'output', 'MACs', 'params', 'params(paper)')
    lines = [head, '-' * len(head)]
    for r in layers:
        lines.append('%-32s %-12s %-18s %14d %10d %12d' % (
            r['name'], r['kind'], 'x'.join(str(d) for d in r['out_shape'][1:]), r['macs'], r['params'],
            r['params_paper']))
    return '\n'.join(lines)
