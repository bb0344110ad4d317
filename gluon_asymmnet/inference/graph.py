"""The network's inference graph: traced, rewritten for fast CPU inference, wrapped as a block.

The rewrite rules live with what they serve: the oneDNN ones in
:mod:`gluon_asymmnet.backend.rewrite`, those of the fused operators in
:mod:`gluon_asymmnet.fastops.rewrite`.
"""
import mxnet as mx

from .. import fastops
from ..backend import inference_rules, rewrite_symbol, tracing_mode
from ..fastops.rewrite import RULES as FASTOPS_RULES

__all__ = ['network_symbol', 'inference_symbol', 'symbol_block', 'structural_layers']


def network_symbol(net, data_name='data'):
    """The graph ``net.hybridize()`` runs outside autograd (a
    :class:`~gluon_asymmnet.backend.TrainInferHybridBlock`'s inference graph)."""
    with tracing_mode('inference'):
        return net(mx.sym.var(data_name))


def inference_symbol(net, data_name='data', input_shape=(1, 3, 224, 224), onednn_concat=None, fast_ops=False):
    """The network's graph, rewritten for fast CPU inference with the same outputs.

    The graph is traced for either mode, then rewritten, exactly but for the
    last rule's rounding:

    - the feature-reuse concat, which names the channel axis ``dim=-3`` so
      that MXNet's own kernel runs it (for the training backward pass, see
      :func:`gluon_asymmnet.backend.ops.channel_concat`), becomes
      ``Concat(dim=1)``, which oneDNN runs without leaving its blocked layout
      (with ``onednn_concat``);
    - ``relu`` becomes ``Activation(act_type='relu')``, which the oneDNN
      subgraph backend fuses into the preceding convolution;
    - ``Dropout`` (identity at inference) is removed;
    - with ``fast_ops``, hard swish (``x * hard_sigmoid(x)``) becomes
      ``ga_hard_swish``, the squeeze-and-excitation rescale (``broadcast_mul``
      by an (N, C, 1, 1) gate) ``ga_channel_scale`` (both bit-identical) and
      global average pooling of their outputs ``ga_global_avg_pool`` (float32
      rounding): the one-pass operators of :mod:`gluon_asymmnet.fastops`
      (``benchmarks/bench_fastops.py`` measures what they buy).

    Parameters
    ----------
    net : HybridBlock
        The network.
    data_name : str
        Name of the input variable.
    input_shape : tuple of int
        The input shape the graph will run (the rewrite needs each tensor's rank).
    onednn_concat : bool, optional
        Concatenate with oneDNN (default: when the batch ``input_shape[0]`` is
        above 1). oneDNN's concat is the faster one at large batches, MXNet's at
        batch 1, where oneDNN spends more time on its blocked layouts than on
        the copy (figures: ``benchmarks/README.md``).
    fast_ops : bool
        Use :mod:`gluon_asymmnet.fastops` (built and loaded here; raises
        :class:`gluon_asymmnet.fastops.FastOpsError` when it cannot be).

    Returns
    -------
    mxnet.symbol.Symbol
        Its arguments are the network's parameter names.
    """
    if onednn_concat is None:
        onednn_concat = input_shape[0] > 1
    rules = inference_rules(onednn_concat)
    if fast_ops:
        fastops.load()
        rules += FASTOPS_RULES
    return rewrite_symbol(net(mx.sym.var(data_name)), {data_name: tuple(input_shape)}, rules)


def symbol_block(sym, net, data_name='data'):
    """A SymbolBlock over ``sym`` that shares ``net``'s parameters (no copies)."""
    params = net.collect_params()
    wanted = set(sym.list_arguments() + sym.list_auxiliary_states()) - {data_name}
    missing = sorted(wanted - set(params.keys()))
    if missing:
        raise ValueError('the inference graph needs parameters the network does not have: %s'
                         % ', '.join(missing[:3]))
    # A typed input spares SymbolBlock's type inference its 'cannot decide type' warning.
    return mx.gluon.SymbolBlock(sym, mx.sym.var(data_name, dtype='float32'), params=params)


def structural_layers(net):
    """Map each convolution's and global pooling's structural name (``features.0``,
    ``features.4.se.conv1``, ``features.21``, ``output.0``) to its node name in the traced graph."""
    layers = {}

    def walk(block, prefix):
        for name, child in block._children.items():
            path = prefix + name
            if isinstance(child, (mx.gluon.nn.Conv2D, mx.gluon.nn.GlobalAvgPool2D)):
                layers[path] = child.name + '_fwd'
            walk(child, path + '.')
    walk(net, '')
    return layers
