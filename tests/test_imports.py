"""The package's import graph: no module imports one of a higher layer, and no import circle.

Read from the source with ``ast`` (nothing is imported), every import
counted, function-level ones too: a circle closed inside a function is still
one the next change can trip over. Importing ``a.b.c`` also runs ``a.b``, so
that edge counts as well (except to the importer's own packages).
"""
import ast
import os

import pytest

PACKAGE = 'gluon_asymmnet'
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)

# Lowest first. A module's layer is that of the longest name here that it is or lies under;
# a module under none of them (the package itself, the command lines, anything new) is on top.
LAYERS = [
    ('files', 'home', 'cpu', 'preprocessing', 'metrics', 'complexity', 'memory'),
    ('param_file', 'layouts', 'export_record', 'backend', 'fastops', 'data'),
    ('block', 'asymmnet', 'mobilenetv2', 'deploy', 'features'),
    ('checkpoint', 'downstream_models', 'registry', 'model_store', 'finetune'),
    ('model_zoo',),
    ('model_flags', 'run_meta'),
    ('export',),
    ('inference', 'prediction'),
    ('evaluation', 'training'),
]
LAYER_OF = {'%s.%s' % (PACKAGE, name): level for level, names in enumerate(LAYERS) for name in names}
TOP = len(LAYERS)


def modules():
    """Dotted module name -> source path, for every module of the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith('.py'):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, '.')
                found[name[:-len('.__init__')] if name.endswith('.__init__') else name] = path
    return found


def import_graph():
    """Module -> the package's modules it imports (directly, or as the packages above them)."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        base = name if path.endswith('__init__.py') else name.rpartition('.')[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                parts = base.split('.')
                target = '.'.join(parts[:len(parts) - node.level + 1] + [node.module or '']).strip('.') \
                    if node.level else node.module or ''
                targets.update(target + '.' + a.name if target + '.' + a.name in mods else target
                               for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        edges = set()
        for target in targets:
            if target != PACKAGE and not target.startswith(PACKAGE + '.'):
                continue
            parts = target.split('.')
            for i in range(2, len(parts) + 1):  # the packages above the target run first
                above = '.'.join(parts[:i])
                if above in mods and above != name and not (name + '.').startswith(above + '.'):
                    edges.add(above)
        graph[name] = edges
    return graph


def layer(name):
    parts = name.split('.')
    for i in range(len(parts), 1, -1):
        if '.'.join(parts[:i]) in LAYER_OF:
            return LAYER_OF['.'.join(parts[:i])]
    return TOP


def test_the_layers_name_existing_modules():
    mods = modules()
    assert sorted(n for n in LAYER_OF if n not in mods) == []


def test_no_module_imports_a_higher_layer():
    upward = ['%s (layer %d) imports %s (layer %d)' % (m, layer(m), t, layer(t))
              for m, targets in sorted(import_graph().items()) for t in sorted(targets) if layer(t) > layer(m)]
    assert upward == []


def circles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert circles(import_graph()) == []


@pytest.mark.parametrize('graph, expected', [
    ({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}, [['a', 'b', 'c']]),
    ({'a': {'b'}, 'b': {'c'}, 'c': set()}, []),
])
def test_circles_finds_a_circle(graph, expected):
    assert circles(graph) == expected


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    # inference/ort.py: from ..export.exporter import export; export/__init__ runs first.
    assert {'%s.export.exporter' % PACKAGE, '%s.export' % PACKAGE} <= graph['%s.inference.ort' % PACKAGE]
    # demo.py imports export inside a function.
    assert '%s.export' % PACKAGE in graph['%s.demo' % PACKAGE]
