"""Every width is the original network: GluonCV's MobileNetV3 and the authors' AsymmNet, quirks included.

The original codes decide the first bottleneck from an unscaled input width of
16 while the stem gives ``make_divisible(16 * multiplier)`` channels
(docs/design.md section 8); ``corrected_first_block=True`` decides from the
real stem width. Run with ``-s`` to see the measured errors and sensitivities.
"""
import csv
import math
import os

import mxnet as mx
import numpy as np
import pytest

import gluon_asymmnet as ga
from conftest import DATA, FIRST_BLOCK_WEIGHT, assert_same_logits, rel_err
from gluon_asymmnet.asymmnet import ARCHS
from reference_weights import network_reference_weights, reference_input

MULTIPLIERS = (0.25, 0.35, 0.5, 0.6, 0.75, 1.0, 1.25)
# 64x64 keeps every comparison sensitive (measured: a 1.5x first-block weight moves the logits by 0.18 or more)
# at a fraction of the cost of 224.
SIZE = 64

# The authors' models/asymmnet.py (github.com/Spark001/AsymmNet), built and run at every width:
# first block (expands, residual) for asymmrate 0, 1, 2; 'first' where its first forward pass fails in the
# first block, 'later' where it fails in a later one (expansion too narrow for asymmrate 2).
NR, R, ER = (False, False), (False, True), (True, False)
AUTHORS_FIRST_BLOCK = {
    ('large', 0.25): (NR, NR, 'later'), ('large', 0.35): (NR, NR, 'later'), ('large', 0.5): (NR, NR, NR),
    ('large', 0.6): (R, R, R), ('large', 0.75): (R, R, R), ('large', 1.0): (R, R, R),
    ('large', 1.25): (ER, 'first', NR),
    ('small', 0.25): (NR, NR, 'later'), ('small', 0.35): (NR, NR, 'later'), ('small', 0.5): (NR, NR, NR),
    ('small', 0.6): (NR, NR, NR), ('small', 0.75): (NR, NR, NR), ('small', 1.0): (NR, NR, NR),
    ('small', 1.25): (ER, 'first', NR),
}
# GluonCV 0.11's mobilenetv3.py: the first block never expands; residual as the authors' with asymmrate 0.
GLUONCV_FIRST_BLOCK = {key: NR if value[0] == ER else value[0] for key, value in AUTHORS_FIRST_BLOCK.items()}
WIDTHS = sorted(AUTHORS_FIRST_BLOCK)


def ids(key):
    return '%s-x%g' % key


@pytest.fixture(scope='module', params=WIDTHS, ids=ids)
def gluoncv_file(request, tmp_path_factory):
    """GluonCV's own MobileNetV3 at one width with the reference weights, its saved file and the input."""
    from gluoncv.model_zoo.mobilenetv3 import get_mobilenet_v3
    arch, multiplier = request.param
    theirs = get_mobilenet_v3(arch, multiplier=multiplier)
    theirs.initialize()
    x = mx.nd.array(reference_input((2, 3, SIZE, SIZE)))
    theirs(x)
    network_reference_weights(theirs)
    path = str(tmp_path_factory.mktemp('gluoncv') / ('mobilenetv3_%s_x%g.params' % (arch, multiplier)))
    theirs.save_parameters(path)
    return arch, multiplier, theirs, path, x


def test_mobilenetv3_is_gluoncv_at_every_width(gluoncv_file):
    arch, multiplier, theirs, path, x = gluoncv_file
    ours = ga.get_model('mobilenetv3_%s' % arch, multiplier=multiplier)
    assert ga.load_checkpoint(ours, path) == 'gluoncv'
    error, tolerance, sensitivity = assert_same_logits(ours, theirs, x)
    assert ga.profile(ours) == ga.profile(theirs)
    print('\nmobilenetv3_%s x%g vs GluonCV: logit error %.2e (tolerance %.2e), scaling %s by 1.5 moves '
          "GluonCV's logits by %.3g" % (arch, multiplier, error, tolerance, FIRST_BLOCK_WEIGHT, sensitivity))


def test_asymmrate_zero_is_gluoncv_where_the_authors_code_is(gluoncv_file):
    """The authors' network with asymmrate 0 is GluonCV's except above 1.0, where it adds a first expansion."""
    arch, multiplier, theirs, path, x = gluoncv_file
    ours = ga.get_model('asymmnet_%s' % arch, multiplier=multiplier, asymmrate=0)
    if AUTHORS_FIRST_BLOCK[arch, multiplier][0] == ER:
        with pytest.raises(ga.CheckpointError, match=r'missing parameter features\.3\.expand\.conv\.weight'):
            ga.load_checkpoint(ours, path)
        return
    assert ga.load_checkpoint(ours, path) == 'gluoncv'
    assert_same_logits(ours, theirs, x)


def test_corrected_first_block_is_another_network_where_it_matters(gluoncv_file):
    """Same file, same keys: equal logits where the stem is 16 wide, clearly different ones where it is not."""
    arch, multiplier, theirs, path, x = gluoncv_file
    corrected = ga.get_model('mobilenetv3_%s' % arch, multiplier=multiplier, corrected_first_block=True)
    assert ga.load_checkpoint(corrected, path) == 'gluoncv'
    error = rel_err(corrected(x).asnumpy(), theirs(x).asnumpy())
    changes = arch == 'large' and multiplier not in (0.6, 0.75, 1.0)
    assert corrected.blocks[0].residual == (arch == 'large')
    if changes:
        assert error > 1e-2
    else:
        assert error < 1e-4
    print('\nmobilenetv3_%s x%g corrected_first_block=True vs GluonCV: %.3g relative' % (arch, multiplier, error))


@pytest.mark.parametrize('arch, multiplier', WIDTHS, ids=lambda v: str(v))
@pytest.mark.parametrize('asymmrate', [0, 1, 2])
def test_asymmnet_first_block_is_the_authors(arch, multiplier, asymmrate):
    expected = AUTHORS_FIRST_BLOCK[arch, multiplier][asymmrate]
    name = 'asymmnet_%s' % arch
    if expected == 'first':
        with pytest.raises(ValueError) as err:
            ga.get_model(name, multiplier=multiplier, asymmrate=asymmrate)
        for words in ('features.3', "the authors' code cannot run", 'input width of 16', 'stem gives 24',
                      'built for 40 channels and receives 56', 'corrected_first_block=True'):
            assert words in str(err.value)
        return
    if expected == 'later':
        with pytest.raises(ValueError, match=r'features\.\d+ .*expansion \d+, asymmrate 2'):
            ga.get_model(name, multiplier=multiplier, asymmrate=asymmrate)
        return
    stem = int(math.ceil(16 * multiplier / 8.0)) * 8
    block = ga.get_model(name, multiplier=multiplier, asymmrate=asymmrate).blocks[0]
    assert (block.expands, block.residual) == expected
    if block.expands:   # asymmrate 0 above 1.0: a 1x1 expansion stem -> stem, then a depthwise of that width
        assert block.expand.conv.weight.shape == (stem, stem, 1, 1) and block.mid_channels == stem
    else:
        assert block.expand is None and block.mid_channels == stem


@pytest.mark.parametrize('arch, multiplier', WIDTHS, ids=lambda v: str(v))
def test_mobilenetv3_first_block_is_gluoncvs(arch, multiplier):
    block = ga.get_model('mobilenetv3_%s' % arch, multiplier=multiplier).blocks[0]
    assert (block.expands, block.residual) == GLUONCV_FIRST_BLOCK[arch, multiplier]


@pytest.mark.parametrize('arch, multiplier', WIDTHS, ids=lambda v: str(v))
@pytest.mark.parametrize('asymmrate', [0, 1, 2])
def test_corrected_first_block_builds_from_the_stem(arch, multiplier, asymmrate):
    name = 'asymmnet_%s' % arch
    if AUTHORS_FIRST_BLOCK[arch, multiplier][asymmrate] == 'later':
        with pytest.raises(ValueError, match='asymmrate 2'):
            ga.get_model(name, multiplier=multiplier, asymmrate=asymmrate, corrected_first_block=True)
        return
    net = ga.get_model(name, multiplier=multiplier, asymmrate=asymmrate, corrected_first_block=True)
    block = net.blocks[0]
    # The first row has expansion == output == stem width: no expansion; residual wherever the stride allows.
    assert (block.expands, block.residual) == (False, arch == 'large')
    if AUTHORS_FIRST_BLOCK[arch, multiplier][asymmrate] != 'first':
        original = ga.get_model(name, multiplier=multiplier, asymmrate=asymmrate)
        assert [b.mid_channels for b in net.blocks[1:]] == [b.mid_channels for b in original.blocks[1:]]


def test_residual_flag_is_what_the_block_computes():
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (1, 8, 16, 16)))
    for corrected in (False, True):
        net = ga.get_model('asymmnet_large', multiplier=0.5, corrected_first_block=corrected)
        net.initialize()
        network_reference_weights(net)
        block = net.blocks[0]
        branch = block.conv2(block.conv1(x)).asnumpy()
        out = block(x).asnumpy()
        assert np.allclose(out, branch + x.asnumpy() if corrected else branch, rtol=1e-6, atol=1e-6)
        assert (rel_err(out, branch) > 0.1) == corrected


def test_corrected_first_block_reaches_profile_and_store():
    original = ga.profile(ga.get_model('asymmnet_large', multiplier=1.25, asymmrate=0))
    corrected = ga.profile(ga.get_model('asymmnet_large', multiplier=1.25, asymmrate=0, corrected_first_block=True))
    # The original's first expansion: 24 x 24 weights + BN, and 112 x 112 x 24 x 24 MACs.
    assert original['params'] - corrected['params'] == 24 * 24 + 2 * 24
    assert original['macs'] - corrected['macs'] == 112 * 112 * 24 * 24
    with pytest.raises(ValueError, match=r'corrected_first_block=True.*published with corrected_first_block=False'):
        ga.get_model('asymmnet_large', pretrained=True, corrected_first_block=True)
    with pytest.raises(ValueError, match='corrected_first_block must be True or False'):
        ga.get_model('asymmnet_large', corrected_first_block='yes')


# ---------------------------------------------------------------------------
# MACs and parameters, counted independently of the network builder


def _ceil8(v):
    return int(math.ceil(v / 8.0)) * 8


def expected_counts(arch, multiplier, asymmrate, first_block, size=224):
    """(macs, params, params_paper) from the config table and docs/design.md section 3's conventions.

    ``first_block`` is the first bottleneck's ``(expands, residual)``; later
    blocks expand when their expansion exceeds ``max(c_in, asymmrate * c_in)``.
    """
    totals = [0, 0, 0]

    def conv(h, c_out, c_in_per_group, k, bias=False, bn=False):
        extra = c_out * (int(bias) + 2 * int(bn))
        totals[0] += h * h * c_out * c_in_per_group * k * k
        totals[1] += c_out * c_in_per_group * k * k + extra
        totals[2] += c_out * c_in_per_group * k + extra

    rows, head = ARCHS[arch]
    h = size // 2
    c = _ceil8(16 * multiplier)
    conv(h, c, 3, 3, bn=True)
    r = asymmrate
    for i, row in enumerate(rows):
        exp, out = _ceil8(row.exp * multiplier), _ceil8(row.out * multiplier)
        expands = first_block[0] if i == 0 else exp > max(c, r * c)
        if expands:
            conv(h, exp - r * c, c, 1, bn=True)
        mid = exp + r * c if expands else c
        h = (h - 1) // row.stride + 1
        conv(h, mid, 1, row.kernel, bn=True)
        if row.se:
            squeeze = _ceil8(mid // 4)
            conv(1, squeeze, mid, 1, bias=True)
            conv(1, mid, squeeze, 1, bias=True)
        conv(h, out, mid, 1, bn=True)
        c = out
    conv(h, _ceil8(head * multiplier), c, 1, bn=True)
    conv(1, 1280, _ceil8(head * multiplier), 1)
    conv(1, 1000, 1280, 1, bias=True)
    return tuple(totals)


def test_independent_counts_reproduce_counts_csv():
    with open(os.path.join(DATA, 'counts.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 22
    for row in rows:
        arch, m, r = row['model'].split('_')[1], float(row['multiplier']), int(row['asymmrate'])
        assert expected_counts(arch, m, r, AUTHORS_FIRST_BLOCK[arch, m][r]) == (
            int(row['macs']), int(row['params_exact']), int(row['params_paper_convention'])), row


@pytest.mark.parametrize('arch, multiplier', WIDTHS, ids=lambda v: str(v))
def test_profile_at_every_width(arch, multiplier):
    lines = []
    for asymmrate, first in enumerate(AUTHORS_FIRST_BLOCK[arch, multiplier]):
        if isinstance(first, str):
            continue
        p = ga.profile(ga.get_model('asymmnet_%s' % arch, multiplier=multiplier, asymmrate=asymmrate))
        assert (p['macs'], p['params'], p['params_paper']) == expected_counts(arch, multiplier, asymmrate, first)
        lines.append('asymmnet_%s x%g r%d: %d MACs, %d params (%d paper convention)'
                     % (arch, multiplier, asymmrate, p['macs'], p['params'], p['params_paper']))
        p = ga.profile(ga.get_model('asymmnet_%s' % arch, multiplier=multiplier, asymmrate=asymmrate,
                                    corrected_first_block=True))
        assert (p['macs'], p['params'], p['params_paper']) == expected_counts(
            arch, multiplier, asymmrate, (False, arch == 'large'))
    p = ga.profile(ga.get_model('mobilenetv3_%s' % arch, multiplier=multiplier))
    assert (p['macs'], p['params'], p['params_paper']) == expected_counts(
        arch, multiplier, 0, GLUONCV_FIRST_BLOCK[arch, multiplier])
    lines.append('mobilenetv3_%s x%g: %d MACs, %d params (%d paper convention)'
                 % (arch, multiplier, p['macs'], p['params'], p['params_paper']))
    print('\n' + '\n'.join(lines))


def test_block_builds_the_structure_it_is_given():
    from gluon_asymmnet.block import AsymmBottleneck
    # The paper's rule by default; the builder's decisions when given.
    default = AsymmBottleneck(16, 16, 16, 3, 1, False, 'relu')
    assert (default.expands, default.residual) == (False, True)
    plain = AsymmBottleneck(16, 16, 16, 3, 1, False, 'relu', asymmrate=0, expands=True, residual=False)
    assert plain.expand.conv.weight.shape == (16, 16, 1, 1) and not plain.residual and plain.mid_channels == 16
    with pytest.raises(ValueError, match=r'block 9: cannot expand input 8 to 16 channels with asymmrate 2'):
        AsymmBottleneck(8, 16, 16, 3, 1, False, 'relu', asymmrate=2, expands=True, where='block 9')
    with pytest.raises(ValueError, match=r'block 9: a residual add needs .* got 16 -> 16 channels at stride 2'):
        AsymmBottleneck(16, 16, 16, 3, 2, False, 'relu', residual=True, where='block 9')
