"""Rewriting a traced graph node by node, and the rules that turn a graph built for training into oneDNN's.

A rule is a function ``rule(graph, i, node) -> bool`` that rewrites node
``i`` of a :class:`Graph` in place and says whether it did. Nodes are visited
in topological order, so a rule sees the node's inputs already rewritten.
:func:`inference_rules` are this package's; :mod:`gluon_asymmnet.fastops.rewrite`
has the rules of the fused operators.
"""
import json

import mxnet as mx

__all__ = ['Graph', 'rewrite_symbol', 'relu_as_activation', 'drop_dropout', 'concat_to_onednn', 'inference_rules']


class Graph(object):
    """A symbol's JSON nodes with the shape of every node's (first) output.

    Parameters
    ----------
    sym : mxnet.symbol.Symbol
    input_shapes : dict
        Shape of every input variable (the rules need each tensor's rank).
    """

    def __init__(self, sym, input_shapes):
        self._json = json.loads(sym.tojson())
        self.nodes = self._json['nodes']
        internals = sym.get_internals()
        _, shapes, _ = internals.infer_shape(**input_shapes)
        by_name = dict(zip(internals.list_outputs(), shapes))
        self._shapes = [by_name.get(n['name'] + '_output') for n in self.nodes]
        self._alias = {}

    def shape(self, i):
        """Shape of node ``i``'s first output as a tuple (empty when unknown)."""
        return tuple(self._shapes[i] or ())

    def source(self, node, k=0):
        """The node that produces ``node``'s input ``k``."""
        return self.nodes[node['inputs'][k][0]]

    def bypass(self, i):
        """Make node ``i`` an identity: its users read its first input instead."""
        self._alias[i] = self.nodes[i]['inputs'][0]

    def _resolve(self, entry):
        while entry[0] in self._alias:
            target = self._alias[entry[0]]
            entry = [target[0], target[1] if entry[1] == 0 else entry[1], 0]
        return entry

    def rewrite(self, rules):
        """Apply the first matching rule to every node, in order."""
        for i, node in enumerate(self.nodes):
            node['inputs'] = [self._resolve(e) for e in node['inputs']]
            for rule in rules:
                if rule(self, i, node):
                    break
        self._json['heads'] = [self._resolve(h) for h in self._json['heads']]

    def symbol(self):
        """The rewritten graph as a Symbol, without the nodes its outputs no longer reach."""
        nodes, heads = self.nodes, self._json['heads']
        keep, stack = set(), [h[0] for h in heads]
        while stack:
            i = stack.pop()
            if i not in keep:
                keep.add(i)
                stack.extend(e[0] for e in nodes[i]['inputs'])
        order = sorted(keep)  # the original order is topological
        new_id = {old: new for new, old in enumerate(order)}
        out_nodes = []
        for old in order:
            node = dict(nodes[old])
            node['inputs'] = [[new_id[e[0]], e[1], e[2] if len(e) > 2 else 0] for e in node['inputs']]
            out_nodes.append(node)
        out = {'nodes': out_nodes, 'heads': [[new_id[h[0]], h[1], 0] for h in heads],
               'arg_nodes': [i for i, n in enumerate(out_nodes) if n['op'] == 'null'],
               'attrs': self._json.get('attrs', {})}
        return mx.sym.load_json(json.dumps(out))


def rewrite_symbol(sym, input_shapes, rules):
    """``sym`` rewritten by ``rules`` (see :class:`Graph`)."""
    graph = Graph(sym, input_shapes)
    graph.rewrite(rules)
    return graph.symbol()


def relu_as_activation(graph, i, node):
    """``relu`` -> ``Activation(act_type='relu')``: oneDNN fuses the latter into the convolution before it."""
    if node['op'] != 'relu':
        return False
    node['op'], node['attrs'] = 'Activation', {'act_type': 'relu'}
    return True


def drop_dropout(graph, i, node):
    """``Dropout`` is the identity at inference: removed."""
    if node['op'] != 'Dropout':
        return False
    graph.bypass(i)
    return True


def concat_to_onednn(graph, i, node):
    """A 4-D ``Concat(dim=-3)`` (:func:`~gluon_asymmnet.backend.ops.channel_concat` for training) -> ``dim=1``.

    The channel axis named from the end keeps MXNet's own concat, for its
    backward pass; ``dim=1`` sends the same concat to oneDNN, which runs it
    without leaving its blocked layout.
    """
    attrs = node.get('attrs', {})
    if node['op'] != 'Concat' or len(graph.shape(i)) != 4 or int(attrs.get('dim', 1)) != -3:
        return False
    node['attrs'] = dict(attrs, dim='1')
    return True


def inference_rules(onednn_concat=True):
    """The rules that make a graph traced for either mode oneDNN's inference graph (exact).

    ``onednn_concat`` False keeps MXNet's concat, faster at batch 1 (see
    :func:`gluon_asymmnet.inference.inference_symbol`).
    """
    return [relu_as_activation, drop_dropout] + ([concat_to_onednn] if onednn_concat else [])
