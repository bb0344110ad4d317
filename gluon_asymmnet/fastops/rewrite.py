"""The graph rewrite rules that put the fused operators of :mod:`gluon_asymmnet.fastops` into an inference graph.

Rules of :class:`gluon_asymmnet.backend.rewrite.Graph`, matched against what
the operations of :mod:`gluon_asymmnet.backend.ops` emit:

- :func:`hard_swish`: ``x * hard_sigmoid(x)`` -> ``ga_hard_swish(x)`` (bit-identical);
- :func:`channel_scale`: ``broadcast_mul`` of (N, C, H, W) by (N, C, 1, 1)
  -> ``ga_channel_scale`` (bit-identical);
- :func:`global_avg_pool`: global average pooling of those operators'
  plain-layout outputs, for which oneDNN's pooling runs a slow kernel, ->
  ``ga_global_avg_pool`` (within float32 rounding).

The library must be loaded (:func:`gluon_asymmnet.fastops.load`) before the
rewritten graph is built.
"""
__all__ = ['PLAIN_OUTPUT_OPS', 'RULES', 'hard_swish', 'channel_scale', 'global_avg_pool']

# The operators' outputs are in plain layout.
PLAIN_OUTPUT_OPS = ('ga_hard_swish', 'ga_channel_scale', 'ga_global_avg_pool')


def _is_hard_sigmoid(node):
    attrs = node.get('attrs', {})
    return (node['op'] == 'hard_sigmoid' and abs(float(attrs.get('alpha', 0.2)) - 1.0 / 6) < 1e-12
            and float(attrs.get('beta', 0.5)) == 0.5)


def hard_swish(graph, i, node):
    """``x * hard_sigmoid(x)`` -> ``ga_hard_swish(x)``.

    ``x`` is often :func:`~gluon_asymmnet.backend.ops.hard_swish`'s reshape
    that resets oneDNN's layout; the operator does not need it (MXNet hands it
    plain-layout input), so it reads the reshape's input.
    """
    if node['op'] != 'elemwise_mul':
        return False
    gate = graph.source(node, 1)
    if not _is_hard_sigmoid(gate) or gate['inputs'][0] != node['inputs'][0]:
        return False
    src = node['inputs'][0]
    producer = graph.nodes[src[0]]
    if producer['op'] == 'Reshape' and producer['attrs'].get('shape') == '(0, 0, 0, 0)':
        src = producer['inputs'][0]
    node['op'], node['inputs'] = 'ga_hard_swish', [src]
    node.pop('attrs', None)
    return True


def channel_scale(graph, i, node):
    """The squeeze-and-excitation rescale, ``broadcast_mul`` of (N, C, H, W) by (N, C, 1, 1) -> ``ga_channel_scale``."""
    if node['op'] != 'broadcast_mul' or len(graph.shape(i)) != 4:
        return False
    scale = graph.shape(node['inputs'][1][0])
    if scale[2:] != (1, 1) or scale[:2] != graph.shape(i)[:2]:
        return False
    node['op'] = 'ga_channel_scale'
    node.pop('attrs', None)
    return True


def global_avg_pool(graph, i, node):
    """Global average pooling of a fused operator's output -> ``ga_global_avg_pool``."""
    attrs = node.get('attrs', {})
    if (node['op'] != 'Pooling' or attrs.get('global_pool') != 'True' or attrs.get('pool_type') != 'avg'
            or graph.source(node)['op'] not in PLAIN_OUTPUT_OPS):
        return False
    node['op'] = 'ga_global_avg_pool'
    node.pop('attrs', None)
    return True


RULES = (hard_swish, channel_scale, global_avg_pool)
