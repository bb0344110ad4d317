"""ONNX rewrites that keep onnxruntime's CPU graph in its blocked (NCHWc) layout.

onnxruntime's CPU provider runs convolutions, pooling, ``Add``, same-shape
``Mul``, ``Concat`` of block-aligned inputs, ``Relu`` and nearest ``Resize``
(opset <= 17) on tensors stored in blocks of 8 (AVX2) or 16 (AVX-512)
channels. Any other operator gets its input reordered to the plain layout and
its output reordered back (``ReorderOutput``/``ReorderInput``), which costs
more than the operator. Two operators of these networks are not in that list:

- hard swish ``x * HardSigmoid(x)``: ``HardSigmoid`` of a convolution's
  output runs in blocked layout when it is fused into a convolution. The
  rewrite inserts an identity depthwise 1x1 convolution (weights 1, no bias:
  exact) before the ``HardSigmoid``, which onnxruntime then fuses into it, so
  the product is a same-shape ``Mul`` in blocked layout;
- the squeeze-and-excitation scale, ``Mul`` of ``(N, C, H, W)`` by a gate of
  ``(N, C, 1, 1)``: a ``Resize`` (nearest) first expands the gate to
  ``(N, C, H, W)``. onnxruntime keeps the ``Mul`` blocked only when it can
  prove both shapes equal, which needs a fixed batch size (a dynamic one
  becomes unknown after ``Resize``): :func:`rewrite_scales` takes the batch
  size and fixes it in the model's input.

Both are exact (the identity convolution multiplies by 1.0; nearest resizing
copies). They need channel counts that are multiples of the block size, which
:func:`gluon_asymmnet.deploy.deploy_network` guarantees (its forms align to 16).
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

__all__ = ['rewrite_hard_swish', 'rewrite_scales', 'optimize']

# Resize above opset 17 is not one of the operators onnxruntime 1.16 keeps blocked.
OPSET = 13


def _shapes(model):
    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {}
    for value in list(graph.value_info) + list(graph.output) + list(graph.input):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField('dim_value') else None for d in dims]
    return shapes


def _toposort(graph, nodes):
    known = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {''}
    ordered, pending = [], list(nodes)
    while pending:
        rest = [n for n in pending if not all(i in known for i in n.input)]
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ValueError('ONNX graph has a cycle or an undefined input: %s' % rest[0].input)
        for n in ready:
            ordered.append(n)
            known.update(n.output)
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def rewrite_hard_swish(model, align=16):
    """Rewrite every ``Mul(x, HardSigmoid(x))`` on 4-D ``x`` whose channels ``align`` divides; returns the count."""
    graph = model.graph
    shapes = _shapes(model)
    producer = {o: n for n in graph.node for o in n.output}
    added, count = [], 0
    for node in graph.node:
        if node.op_type != 'Mul' or len(node.input) != 2:
            continue
        x, gate = node.input
        hsig = producer.get(gate)
        shape = shapes.get(x) or []
        if hsig is None or hsig.op_type != 'HardSigmoid' or hsig.input[0] != x or len(shape) != 4 \
                or not shape[1] or shape[1] % align:
            continue
        channels = shape[1]
        weight = numpy_helper.from_array(np.ones((channels, 1, 1, 1), np.float32), x + '_identity_weight')
        graph.initializer.append(weight)
        identity = x + '_identity'
        added.append(helper.make_node('Conv', [x, weight.name], [identity], name=identity, group=channels,
                                      kernel_shape=[1, 1]))
        hsig.input[0] = identity
        count += 1
    if added:
        _toposort(graph, list(graph.node) + added)
    return count


def rewrite_scales(model, batch_size):
    """Fix the batch size and ``Resize`` every ``(N, C, 1, 1)`` gate of a ``Mul`` to the other factor's shape.

    Sets the opset to 13 (the graph's operators are MXNet's opset-13
    translations). Returns the count.
    """
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = int(batch_size)
    for opset in model.opset_import:
        if opset.domain in ('', 'ai.onnx'):
            opset.version = min(opset.version, OPSET)
    shapes = _shapes(model)
    added, count = [], 0
    for node in graph.node:
        if node.op_type != 'Mul' or len(node.input) != 2:
            continue
        x, gate = (shapes.get(name) or [] for name in node.input)
        if len(x) != 4 or len(gate) != 4 or gate[2:] != [1, 1] or None in x[2:] or x[2:] == [1, 1] \
                or x[:2] != gate[:2]:
            continue
        scales = numpy_helper.from_array(np.array([1, 1] + x[2:], np.float32), node.input[1] + '_scales')
        graph.initializer.append(scales)
        expanded = node.input[1] + '_expanded'
        added.append(helper.make_node('Resize', [node.input[1], '', scales.name], [expanded], name=expanded,
                                      mode='nearest', coordinate_transformation_mode='asymmetric',
                                      nearest_mode='floor'))
        node.input[1] = expanded
        count += 1
    if added:
        _toposort(graph, list(graph.node) + added)
    return count


def optimize(model, batch_size=None, align=16):
    """Both rewrites (the scales only with a ``batch_size``) of an ``onnx.ModelProto`` or file; returns the model."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    rewrite_hard_swish(model, align)
    if batch_size is not None:
        rewrite_scales(model, batch_size)
    onnx.checker.check_model(model)
    return model
