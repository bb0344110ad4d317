"""load_checkpoint: every layout loads, every bad file is refused cleanly and leaves the network as it was."""
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from conftest import assert_same_logits, assert_sensitive, randomized, rel_err
from gluon_asymmnet.checkpoint import read_index

SMALL = dict(multiplier=0.5, classes=10)
X = mx.nd.array(np.random.RandomState(7).uniform(-1, 1, (2, 3, 64, 64)))


def snapshot(net):
    return {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


def assert_same(before, after):
    assert before.keys() == after.keys()
    for k in before:
        assert before[k].dtype == after[k].dtype and np.array_equal(before[k], after[k]), k


# An independent writer of MXNet's NDArray-list format, to craft damaged files.
V1, V2 = 0xF993FAC8, 0xF993FAC9


def record(shape, code=0, data=None, magic=V2, stype=0, ndim=None, dev=1):
    out = struct.pack('<I', magic)
    if magic == V2:
        out += struct.pack('<i', stype)
    out += struct.pack('<i', len(shape) if ndim is None else ndim) + struct.pack('<%dq' % len(shape), *shape)
    out += struct.pack('<iii', dev, 0, code)
    size = int(np.prod(shape)) * {0: 4, 1: 8, 2: 2, 3: 1, 4: 4}[code]
    return out + (data if data is not None else bytes(size))


def ndfile(records, names):
    out = struct.pack('<QQQ', 0x112, 0, len(records)) + b''.join(records)
    out += struct.pack('<Q', len(names))
    for n in names:
        out += struct.pack('<Q', len(n.encode())) + n.encode()
    return out


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """A randomized small AsymmNet, its save_parameters file and its outputs.

    The outputs depend on the first block's weights (assert_sensitive), so a
    loader that dropped or mixed up parameters could not reproduce them.
    """
    net = randomized('asymmnet_small', SMALL)
    assert_sensitive(net, X)
    path = str(tmp_path_factory.mktemp('src') / 'small.params')
    net.save_parameters(path)
    return net, path, net(X).asnumpy()


def test_writer_matches_mxnet(tmp_path):
    path = str(tmp_path / 'a.params')
    a, b = np.arange(12, dtype=np.float32).reshape(3, 4), np.ones(5, np.float16)
    mx.nd.save(path, {'a': mx.nd.array(a), 'b': mx.nd.array(b, dtype='float16')})
    assert open(path, 'rb').read() == ndfile([record((3, 4), 0, a.tobytes()), record((5,), 2, b.tobytes())], ['a', 'b'])


def test_v1_records_are_read_like_mxnet(tmp_path):
    """Files from MXNet releases before storage types (NDArray V1 records) still parse."""
    path = str(tmp_path / 'v1.params')
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    with open(path, 'wb') as f:
        f.write(ndfile([record((2, 3), 0, a.tobytes(), magic=V1)], ['w']))
    assert read_index(path) == {'w': ((2, 3), np.dtype('float32'))}
    assert np.array_equal(mx.nd.load(path)['w'].asnumpy(), a)


def test_read_index_agrees_with_mx_load(source):
    _, path, _ = source
    loaded = mx.nd.load(path)
    index = read_index(path)
    assert list(index) == list(loaded)
    assert all(index[k] == (v.shape, np.dtype(v.dtype)) for k, v in loaded.items())


def test_released_layout_own_save_parameters(source):
    _, path, expected = source
    net = ga.get_model('asymmnet_small', **SMALL)
    assert ga.load_checkpoint(net, path) == 'released'
    assert np.array_equal(net(X).asnumpy(), expected)


def test_loads_into_hybridized_initialized_network(source):
    _, path, expected = source
    net = randomized('asymmnet_small', SMALL, seed=3)
    net.hybridize(static_alloc=True, static_shape=True)
    assert rel_err(net(X).asnumpy(), expected) > 0.01
    assert ga.load_checkpoint(net, path) == 'released'
    assert rel_err(net(X).asnumpy(), expected) < 1e-6


def test_authors_code_layout(source, tmp_path):
    _, path, expected = source
    renamed = {}
    for k, v in mx.nd.load(path).items():
        if '.se.' not in k:
            k = k.replace('.conv1.', '.dw_conv.').replace('.conv2.', '.pw_conv_linear.')
        renamed[k] = v
    assert any('.dw_conv.' in k for k in renamed) and any('.se.conv1.' in k for k in renamed)
    out = str(tmp_path / 'authors.params')
    mx.nd.save(out, renamed)
    net = ga.get_model('asymmnet_small', **SMALL)
    assert ga.load_checkpoint(net, out) == 'authors-code'
    assert np.array_equal(net(X).asnumpy(), expected)


def test_a_layout_maps_a_backbone_under_another_prefix():
    """layouts.structural: a downstream network's backbone keys are renamed under the file's prefix."""
    from mxnet.gluon import nn
    from gluon_asymmnet.layouts import structural

    class Downstream(nn.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.backbone = ga.get_model('asymmnet_small', **SMALL)
                self.head = nn.Conv2D(3, 1, in_channels=16)

    seen = []

    def rename(keys):
        seen.append(sorted(keys))
        return {k: k.replace('.conv1.conv.', '.dw_conv.conv.') for k in keys}

    net = Downstream()
    params, mapping, skipped = structural(rename, prefixes={'backbone.': 'base_net.'})(net, {})
    assert list(mapping) == list(params) and skipped == []
    # Each group is renamed on its own, the backbone's without its prefix.
    assert sorted(seen) == sorted([['head.bias', 'head.weight'],
                                   sorted(ga.get_model('asymmnet_small', **SMALL)._collect_params_with_prefix())])
    assert mapping['backbone.features.4.conv1.conv.weight'] == 'base_net.features.4.dw_conv.conv.weight'
    se = next(k for k in mapping if '.se.' in k)
    assert mapping[se] == 'base_net.' + se[len('backbone.'):]
    assert mapping['head.weight'] == 'head.weight'


def test_export_layout_from_another_instance(source, tmp_path):
    src, _, expected = source
    src.hybridize()
    src(X)
    src.export(str(tmp_path / 'exported'), epoch=0)
    keys = list(mx.nd.load(str(tmp_path / 'exported-0000.params')))
    assert all(k.startswith(('arg:' + src.prefix, 'aux:' + src.prefix)) for k in keys)
    net = ga.get_model('asymmnet_small', **SMALL)
    assert net.prefix != src.prefix
    assert ga.load_checkpoint(net, str(tmp_path / 'exported-0000.params')) == 'export'
    assert_same(snapshot(src), snapshot(net))
    assert np.array_equal(net(X).asnumpy(), expected)
    src.hybridize(False)


@pytest.mark.parametrize('file_dtype', ['float16', 'float64'])
def test_other_float_files_are_cast_on_load(source, tmp_path, file_dtype):
    _, path, expected = source
    arrays = {k: v.astype(file_dtype) for k, v in mx.nd.load(path).items()}
    out = str(tmp_path / ('%s.params' % file_dtype))
    mx.nd.save(out, arrays)
    assert {dtype.name for _, dtype in read_index(out).values()} == {file_dtype}
    net = ga.get_model('asymmnet_small', **SMALL)
    assert ga.load_checkpoint(net, out) == 'released'
    for k, p in net._collect_params_with_prefix().items():
        assert p.data().dtype == np.float32
        assert np.array_equal(p.data().asnumpy(), arrays[k].asnumpy().astype(np.float32))
    assert rel_err(net(X).asnumpy(), expected) < (1e-2 if file_dtype == 'float16' else 1e-6)


def test_float32_file_into_float16_network(source):
    _, path, expected = source
    net = ga.get_model('asymmnet_small', **SMALL)
    net.cast('float16')
    assert ga.load_checkpoint(net, path) == 'released'
    # BatchNorm keeps float32 parameters in a float16 network (Gluon's rule); the convolutions are float16.
    assert all(p.data().dtype == np.dtype(p.dtype) for p in net.collect_params().values())
    assert net.features[0].weight.data().dtype == np.float16
    arrays = mx.nd.load(path)
    for k, p in net._collect_params_with_prefix().items():
        assert np.array_equal(p.data().asnumpy(), arrays[k].asnumpy().astype(p.dtype))


def test_context_list(source):
    _, path, _ = source
    net = ga.get_model('asymmnet_small', **SMALL)
    ctx = [mx.cpu(0), mx.cpu(1)]
    ga.load_checkpoint(net, path, ctx=ctx)
    assert all(set(p.list_ctx()) == set(ctx) for p in net.collect_params().values())
    initialized = randomized('asymmnet_small', SMALL, seed=4)
    ga.load_checkpoint(initialized, path, ctx=ctx)
    assert all(set(p.list_ctx()) == set(ctx) for p in initialized.collect_params().values())


@pytest.mark.parametrize('size', ['large', 'small'])
def test_gluoncv_mobilenetv3_file_gives_gluoncv_outputs(tmp_path, size):
    """GluonCV's own network saves the file; every width is in test_fidelity.py."""
    from gluoncv.model_zoo import get_model as gcv_get_model
    from reference_weights import network_reference_weights
    theirs = gcv_get_model('mobilenetv3_%s' % size)
    theirs.initialize()
    x = mx.nd.array(np.random.RandomState(2).uniform(-1, 1, (2, 3, 96, 96)))
    theirs(x)
    network_reference_weights(theirs)
    path = str(tmp_path / ('mobilenetv3_%s-gluoncv.params' % size))
    theirs.save_parameters(path)
    ours = ga.get_model('mobilenetv3_%s' % size)
    assert ga.load_checkpoint(ours, path) == 'gluoncv'
    assert_same_logits(ours, theirs, x)
    # The same file into an AsymmNet is refused with the first mismatching block named.
    with pytest.raises(ga.CheckpointError, match=r'layout released.*features\.'):
        ga.load_checkpoint(ga.get_model('asymmnet_%s' % size), path)


def test_forced_layout(source, tmp_path):
    _, path, _ = source
    net = ga.get_model('asymmnet_small', **SMALL)
    with pytest.raises(ga.CheckpointError, match=r'missing parameter features\.3\.dw_conv\.conv\.weight '
                       r'\(shape \(8, 1, 3, 3\), network parameter features\.3\.conv1\.conv\.weight\)'):
        ga.load_checkpoint(net, path, layout='authors-code')
    with pytest.raises(ga.CheckpointError, match=r"unknown layout 'nonsense'; known: released, authors-code"):
        ga.load_checkpoint(net, path, layout='nonsense')
    assert ga.load_checkpoint(net, path, layout='released') == 'released'


def header_spans(path):
    """(offset, length) of every array record's header in a V2 file, walked from its index."""
    spans, at = [], 24
    for shape, dtype in read_index(path).values():
        size = 24 + 8 * len(shape)
        spans.append((at, size))
        at += size + int(np.prod(shape)) * dtype.itemsize
    return spans


def _good_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def _bad_files(source_path, tmp):
    """name -> (path, words the error must contain)."""
    good = _good_bytes(source_path)
    index = read_index(source_path)
    names = list(index)
    first = names[0]
    cases = {}

    def put(name, data, *words):
        p = os.path.join(tmp, name + '.params')
        with open(p, 'wb') as f:
            f.write(data)
        cases[name] = (p, words)

    put('empty', b'', 'empty')
    put('header-only', good[:12], 'truncated at byte 0', 'file header')
    put('cut-in-array-header', good[:header_spans(source_path)[100][0] + 10], 'truncated', 'array #100')
    put('cut-in-data', good[:len(good) // 2], 'truncated', 'data')
    put('cut-in-names', good[:-3], 'truncated', 'name #')
    put('trailing-bytes', good + b'\0\0\0', '3 unexpected bytes')
    put('garbage', np.random.RandomState(0).bytes(4096), 'not an MXNet parameter file')
    put('text', b'features.0.weight 0.1 0.2 0.3\n' * 20, 'text file', 'features.0.weight')
    put('pickle-states', pickle.dumps({0: (np.zeros(3), np.ones(3))}, protocol=4), 'pickle')
    put('ndim-minus-one', ndfile([record((), ndim=-1)], [first]), '-1 dimensions')
    put('huge-count', good[:16] + struct.pack('<Q', 1 << 60) + good[24:], 'announces')
    put('huge-dims', ndfile([record((1 << 40, 1 << 20), data=b'')], [first]), 'truncated', 'data')
    put('negative-dim', ndfile([record((-5, 3), data=b'')], [first]), 'negative dimension')
    put('sparse', ndfile([record((4,), stype=1)], [first]), 'row_sparse')
    put('int-dtype', ndfile([record((4,), code=4)], [first]), 'int32')
    put('unnamed-list', ndfile([record((4,))], []), 'unnamed')
    put('not-utf8-name', ndfile([record((4,))], ['x']).replace(b'x', b'\xff'), 'UTF-8')
    put('duplicate-name', ndfile([record((4,)), record((4,))], ['w', 'w']), "'w' occurs 2 times")
    zpath = os.path.join(tmp, 'zipped.zip')
    with zipfile.ZipFile(zpath, 'w') as zf:
        zf.writestr('a.params', good)
    put('zip', _good_bytes(zpath), 'zip archive')
    loaded = mx.nd.load(source_path)
    missing = dict(loaded)
    del missing[names[5]]
    put('missing-key', b'', 'missing parameter %s' % names[5], str(index[names[5]][0]))
    mx.nd.save(cases['missing-key'][0], missing)
    extra = dict(loaded, **{'features.99.weight': mx.nd.zeros((2, 2))})
    put('unexpected-key', b'', 'unexpected parameter features.99.weight', '(2, 2)')
    mx.nd.save(cases['unexpected-key'][0], extra)
    for name, model, kwargs, words in [
            ('other-width', 'asymmnet_small', dict(multiplier=0.75, classes=10),
             ['parameter features.0.weight has shape (16, 3, 3, 3) in the file, the network expects (8, 3, 3, 3)']),
            ('other-model', 'asymmnet_large', dict(multiplier=0.5, classes=10),
             ['features.3.', 'missing', 'mismatched']),
            ('other-classes', 'asymmnet_small', dict(multiplier=0.5, classes=7),
             ['output.0.weight has shape (7, 1280, 1, 1)'])]:
        p = os.path.join(tmp, name + '.params')
        other = ga.get_model(model, **kwargs)
        other.initialize()
        other.save_parameters(p)
        cases[name] = (p, words)
    other = ga.get_model('asymmnet_small', multiplier=0.75, classes=10)
    other.initialize()
    other.hybridize()
    other(X)
    other.export(os.path.join(tmp, 'export-other-width'), epoch=0)
    cases['export-other-width'] = (os.path.join(tmp, 'export-other-width-0000.params'), [
        '(layout export): parameter arg:%sconv0_weight has shape (16, 3, 3, 3) in the file, the network expects '
        '(8, 3, 3, 3), network parameter ' % other.prefix])
    return cases


BAD = ['empty', 'header-only', 'cut-in-array-header', 'cut-in-data', 'cut-in-names', 'trailing-bytes', 'garbage',
       'text', 'pickle-states', 'ndim-minus-one', 'huge-count', 'huge-dims', 'negative-dim', 'sparse', 'int-dtype',
       'unnamed-list', 'not-utf8-name', 'duplicate-name', 'zip', 'missing-key', 'unexpected-key', 'other-width',
       'other-model', 'other-classes', 'export-other-width']


@pytest.fixture(scope='module')
def bad_files(source, tmp_path_factory):
    return _bad_files(source[1], str(tmp_path_factory.mktemp('bad')))


@pytest.fixture(scope='module')
def victim():
    """A hybridized network with its parameters and outputs, shared by the refusal tests."""
    net = randomized('asymmnet_small', SMALL, seed=11)
    net.hybridize()
    return net, snapshot(net), net(X).asnumpy()


@pytest.mark.parametrize('case', BAD)
def test_bad_file_is_refused_and_network_unchanged(bad_files, victim, case):
    path, words = bad_files[case]
    net, before, out_before = victim
    with pytest.raises(ga.CheckpointError) as err:
        ga.load_checkpoint(net, path)
    assert isinstance(err.value, ValueError)
    message = str(err.value)
    assert message.startswith(path)
    for w in words:
        assert w in message, message
    assert_same(before, snapshot(net))
    assert np.array_equal(net(X).asnumpy(), out_before)


def test_missing_path_and_directory(tmp_path):
    net = ga.get_model('asymmnet_small', **SMALL)
    for p, words in ((str(tmp_path / 'nope.params'), 'no such parameter file'),
                     (str(tmp_path), 'is a folder, not a parameter file')):
        with pytest.raises(ga.CheckpointError, match=words):
            ga.load_checkpoint(net, p)


def test_every_truncation_is_refused(source, tmp_path):
    """Cut the file at every header boundary and at many points inside the data: always a CheckpointError."""
    good = _good_bytes(source[1])
    net = randomized('asymmnet_small', SMALL, seed=12)
    before = snapshot(net)
    cuts = sorted(set(list(range(0, 200, 3)) + list(range(0, len(good), len(good) // 97)) + [len(good) - 1]))
    p = str(tmp_path / 'cut.params')
    for n in cuts:
        with open(p, 'wb') as f:
            f.write(good[:n])
        with pytest.raises(ga.CheckpointError):
            ga.load_checkpoint(net, p)
    assert_same(before, snapshot(net))


def test_damaged_headers_never_crash(source, tmp_path):
    """Random bytes written into array headers: refused with CheckpointError, never a crash."""
    good = bytearray(_good_bytes(source[1]))
    headers = header_spans(source[1])
    rng = np.random.RandomState(5)
    net = ga.get_model('asymmnet_small', **SMALL)
    p = str(tmp_path / 'damaged.params')
    refused = 0
    for _ in range(60):
        data = bytearray(good)
        start, size = headers[rng.randint(len(headers))]
        pos = start + int(rng.randint(size - 3))
        data[pos:pos + 4] = rng.bytes(4)
        with open(p, 'wb') as f:
            f.write(bytes(data))
        try:
            ga.load_checkpoint(net, p)
        except ga.CheckpointError:
            refused += 1
    assert refused >= 55


def test_mx_nd_load_crashes_where_load_checkpoint_refuses(bad_files):
    """Why the structure is parsed before MXNet sees the file: catching MXNetError is not enough."""
    path = bad_files['ndim-minus-one'][0]
    run = subprocess.run([sys.executable, '-c', 'import mxnet, sys; mxnet.nd.load(sys.argv[1])', path],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and 'MXNetError' not in run.stderr
