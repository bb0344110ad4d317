"""AsymmNet and MobileNetV3: one network builder over the config tables.

Yang, Shen, Zhao, "AsymmNet: Towards ultralight convolution neural networks
using asymmetrical bottlenecks", CVPR 2021 Workshops (arXiv 2104.07770);
Howard et al., "Searching for MobileNetV3", ICCV 2019.

Layer indices match the authors' released checkpoint and GluonCV:
``features.0`` stem conv, ``features.1`` its BN, ``features.3...`` the blocks,
then head conv and BN, pooling, the 1280-wide conv, dropout; ``output.0`` the
classifier.
"""
import math
import numbers
from collections import namedtuple

import numpy as np
from mxnet.gluon import nn
from mxnet.ndarray import NDArray

from .backend import TrainInferHybridBlock
from .block import Act, AsymmBottleneck, make_divisible, norm

__all__ = ['BlockConfig', 'BlockPlan', 'ARCHS', 'ORIGINALS', 'plan_blocks', 'check_network_args', 'BottleneckNet',
           'AsymmNet', 'asymmnet_large', 'asymmnet_small', 'mobilenetv3_large', 'mobilenetv3_small']

BlockConfig = namedtuple('BlockConfig', 'kernel exp out se act stride')

_R, _H = 'relu', 'hard_swish'

# (config rows, head width before scaling). Rows: kernel, expansion, output, SE, activation, stride.
ARCHS = {
    'large': ([BlockConfig(*row) for row in [
        (3, 16, 16, False, _R, 1), (3, 64, 24, False, _R, 2), (3, 72, 24, False, _R, 1),
        (5, 72, 40, True, _R, 2), (5, 120, 40, True, _R, 1), (5, 120, 40, True, _R, 1),
        (3, 240, 80, False, _H, 2), (3, 200, 80, False, _H, 1), (3, 184, 80, False, _H, 1),
        (3, 184, 80, False, _H, 1), (3, 480, 112, True, _H, 1), (3, 672, 112, True, _H, 1),
        (5, 672, 160, True, _H, 2), (5, 960, 160, True, _H, 1), (5, 960, 160, True, _H, 1),
    ]], 960),
    'small': ([BlockConfig(*row) for row in [
        (3, 16, 16, True, _R, 2), (3, 72, 24, False, _R, 2), (3, 88, 24, False, _R, 1),
        (5, 96, 40, True, _H, 2), (5, 240, 40, True, _H, 1), (5, 240, 40, True, _H, 1),
        (5, 120, 48, True, _H, 1), (5, 144, 48, True, _H, 1), (5, 288, 96, True, _H, 2),
        (5, 576, 96, True, _H, 1), (5, 576, 96, True, _H, 1),
    ]], 576),
}

STEM_CHANNELS = 16
LAST_CHANNELS = 1280
# Index of the first block in ``features`` (stem conv, BN, activation before it).
FIRST_BLOCK = 3


def _authors_expands(exp, c_in, out, asymmrate):
    """The authors' rule (and the paper's): expand when the expansion exceeds the reused input."""
    return exp > max(c_in, asymmrate * c_in)


def _gluoncv_expands(exp, c_in, out, asymmrate):
    """GluonCV's MobileNetV3 rule: expand unless the expansion size equals the output width."""
    return exp != out


# Whose code a network reproduces -> its expansion rule. Both decide the residual as
# ``c_in == out and stride == 1``, with ``c_in`` their own channel counter (docs/design.md section 8.3).
ORIGINALS = {'authors': _authors_expands, 'gluoncv': _gluoncv_expands}

BlockPlan = namedtuple('BlockPlan', 'in_channels exp out kernel stride se act expands residual')


def plan_blocks(rows, multiplier, asymmrate, original='authors', corrected_first_block=False, name='network'):
    """Each bottleneck's widths and structure, as the original code builds them.

    The original codes count the first block's input as the unscaled 16 while
    the stem gives ``make_divisible(16 * multiplier)`` channels, and decide
    that block's expansion and residual from the 16 (docs/design.md section 8.1).
    ``corrected_first_block`` decides from the real stem width instead. ``name``
    is used in error messages.

    Returns
    -------
    list of BlockPlan
        ``in_channels`` is the real input width.

    Raises
    ------
    ValueError
        The original code cannot build this width: its first depthwise
        convolution would receive a different width than it was built for.
    """
    expands_rule = ORIGINALS[original]
    width = make_divisible(STEM_CHANNELS * multiplier)
    counted = width if corrected_first_block else STEM_CHANNELS
    plans = []
    for row in rows:
        exp, out = make_divisible(row.exp * multiplier), make_divisible(row.out * multiplier)
        expands = expands_rule(exp, counted, out, asymmrate)
        residual = counted == out and row.stride == 1
        if counted != width:
            _check_original_first_block(width, counted, exp, expands, asymmrate, original, name)
        plans.append(BlockPlan(width, exp, out, row.kernel, row.stride, row.se, row.act, expands, residual))
        width = counted = out
    return plans


def _check_original_first_block(width, counted, exp, expands, asymmrate, original, name):
    built = exp + asymmrate * counted if expands else exp
    received = 2 * asymmrate * width + exp - asymmrate * counted if expands else width
    if built != received:
        who = _WHOSE[original]
        raise ValueError(
            "features.%d (block 1 of %s, asymmrate %d): %s code cannot run this network: it decides "
            "the first block from an input width of %d although the stem gives %d channels, so the block's "
            "depthwise convolution is built for %d channels and receives %d (%s code fails at its first forward "
            "pass). Pass corrected_first_block=True to build the first block from the real stem width (a network "
            "%s code never built), or choose another multiplier or asymmrate"
            % (FIRST_BLOCK, name, asymmrate, who, counted, width, built, received, who, who))


_WHOSE = {'authors': "the authors'", 'gluoncv': "GluonCV's"}


# The widest network any paper trains is MobileNetV2 1.4; at 10 the parameters are already 100 times as many.
MAX_MULTIPLIER = 10.0
# The constructor arguments check_network_args judges (every builder takes some of them).
NETWORK_ARGUMENTS = ('multiplier', 'asymmrate', 'shuffle_groups', 'classes', 'dropout')


def _finite_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError('%s must be a finite number, got %r' % (name, value))


def check_network_args(multiplier=1.0, asymmrate=0, shuffle_groups=0, classes=1000, dropout=0.0):
    """Refuse constructor arguments no network of the package accepts (ValueError naming the argument).

    Non-finite values (``inf``, ``nan``) and multipliers beyond
    :data:`MAX_MULTIPLIER` are refused before any width is computed from them.
    """
    for name, value in (('multiplier', multiplier), ('asymmrate', asymmrate), ('shuffle_groups', shuffle_groups),
                        ('classes', classes), ('dropout', dropout)):
        _finite_number(name, value)
    if not 0 < multiplier <= MAX_MULTIPLIER:
        raise ValueError('multiplier must be in (0, %g], got %r' % (MAX_MULTIPLIER, multiplier))
    if int(asymmrate) != asymmrate or asymmrate < 0:
        raise ValueError('asymmrate must be an integer >= 0, got %r' % (asymmrate,))
    if int(shuffle_groups) != shuffle_groups or shuffle_groups < 0:
        raise ValueError('shuffle_groups must be an integer >= 0, got %r' % (shuffle_groups,))
    if int(classes) != classes or classes < 1:
        raise ValueError('classes must be a positive integer, got %r' % (classes,))
    if not 0 <= dropout < 1:
        raise ValueError('dropout must be in [0, 1), got %r' % (dropout,))


_TYPES = {'float16': np.float16, 'float32': np.float32, 'float64': np.float64}


def check_input(x, dtype, name):
    """Refuse a batch the network cannot take (ValueError, one line): the rank, channels and type are read only.

    ``x`` must be ``(N, 3, H, W)`` of the network's ``dtype`` (float32 unless
    cast), and float16 networks run on GPUs only (MXNet 1.9.1's CPU
    convolutions have no float16 kernels).
    """
    shape, kind = x.shape, x.dtype
    if len(shape) == 4 and shape[1] == 3 and kind is _TYPES.get(dtype) and (
            kind is not np.float16 or x.context.device_type == 'gpu'):
        return
    got = np.dtype(kind).name
    if got == 'float16' == dtype:
        raise ValueError('%s was cast to float16, which MXNet 1.9.1 cannot run on the CPU (%s); cast it back with '
                         "net.cast('float32'), or run it on a GPU" % (name, x.context))
    hint = ''
    if len(shape) == 4 and shape[3] == 3 and shape[1] != 3:
        hint = '; channels last? use x.transpose((0, 3, 1, 2))'
    elif len(shape) == 3:
        hint = '; one image? add the batch axis: x.expand_dims(0)'
    elif got != dtype and got in ('uint8', 'int8', 'int32', 'int64'):
        hint = '; integer pixels? convert and normalise them: (x.astype(%r) / 255 - mean) / std' % dtype
    elif got != dtype:
        hint = '; convert it: x.astype(%r)' % dtype
    raise ValueError('%s takes a %s batch of shape (N, 3, H, W), got %s of shape %s%s'
                     % (name, dtype, got, shape, hint))


class CheckedNet(TrainInferHybridBlock):
    """A network users call directly: each NDArray batch is checked (:func:`check_input`) before it runs.

    The classifiers and the downstream models (pose, detection) derive from
    it; their inner blocks do not, so a batch is checked once.
    """

    def forward(self, x, *args):
        if isinstance(x, NDArray):
            check_input(x, getattr(self, '_input_dtype', 'float32'), type(self).__name__)
        return super().forward(x, *args)

    def cast(self, dtype):
        """:meth:`HybridBlock.cast`; the network then takes input of that type (checked at each call)."""
        super().cast(dtype)
        self._input_dtype = np.dtype(dtype).name


class BottleneckNet(CheckedNet):
    """A classifier whose ``features`` hold a stem, :class:`AsymmBottleneck` blocks and a head, then ``output``.

    Subclasses set ``multiplier``, ``asymmrate``, ``shuffle_groups``,
    ``classes`` and ``norm`` (the keyword arguments ``norm_layer``,
    ``norm_kwargs`` of :func:`~gluon_asymmnet.block.norm`), build the stem, bottlenecks and head of ``features`` with
    :meth:`_add_trunk`, what follows the head, and the classifier with
    :meth:`_add_classifier`.
    """

    def _add_trunk(self, stem, plans, head, act, name):
        """Create ``features``: a 3x3 stride-2 stem of ``stem`` channels, one bottleneck per :class:`BlockPlan`
        and a 1x1 head of ``head`` channels, each conv without bias, then BatchNorm and ``act``."""
        self.features = nn.HybridSequential(prefix='')
        self._add_conv_bn(stem, 3, 2, 3, act)
        self._add_blocks(plans, name)
        self._add_conv_bn(head, 1, 1, plans[-1].out, act)

    def _add_classifier(self, dropout, in_channels, use_bias):
        """Dropout (when > 0) at the end of ``features``, then ``output``: a 1x1 conv to the classes, flattened."""
        if dropout > 0:
            self.features.add(nn.Dropout(dropout))
        self.output = nn.HybridSequential(prefix='output_')
        with self.output.name_scope():
            self.output.add(nn.Conv2D(self.classes, 1, use_bias=use_bias, in_channels=in_channels))
            self.output.add(nn.Flatten())

    def _add_conv_bn(self, channels, kernel, stride, in_channels, act):
        # Three children (conv, BatchNorm, activation): the released checkpoint's indices.
        self.features.add(nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, use_bias=False,
                                    in_channels=in_channels))
        self.features.add(norm(channels, **self.norm))
        self.features.add(Act(act))

    def _add_blocks(self, plans, name):
        """Append one bottleneck per :class:`BlockPlan` to ``features``; ``name`` is the network's in error messages."""
        first = len(self.features)
        for i, p in enumerate(plans):
            self.features.add(AsymmBottleneck(
                p.in_channels, p.exp, p.out, p.kernel, p.stride, p.se, p.act, self.asymmrate,
                self.shuffle_groups, expands=p.expands, residual=p.residual, **self.norm,
                where='features.%d (block %d of %s, multiplier %g)' % (first + i, i + 1, name, self.multiplier)))

    @property
    def blocks(self):
        """The bottlenecks, in order."""
        return [b for b in self.features if isinstance(b, AsymmBottleneck)]

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


class AsymmNet(BottleneckNet):
    """AsymmNet (CVPR 2021 Workshops); MobileNetV3 when ``asymmrate=0``.

    By default the network is the original code's at every width, quirks
    included (docs/design.md section 8.1): the first block's expansion and
    residual are decided from an unscaled input width of 16 while the stem
    gives ``make_divisible(16 * multiplier)`` channels. So at multipliers
    <= 0.5 (stem 8) the first block of the large networks has no residual;
    above 1.0 (stem 24 and more) no first block has one, the authors' code
    adds an expansion when ``asymmrate`` is 0, and where it cannot run at all
    (``asymmrate`` 1 above 1.0) construction is refused.

    Parameters
    ----------
    arch : str
        ``'large'`` or ``'small'``.
    multiplier : float
        Width multiplier applied to every layer but the 1280-wide conv.
    asymmrate : int
        Feature-reuse rate of every bottleneck (0 = MobileNetV3's block).
    shuffle_groups : int
        Channel shuffle groups after each feature-reuse concat (0 = off).
    classes : int
        Number of output classes.
    dropout : float
        Dropout before the classifier (0.2 in the released model).
    corrected_first_block : bool
        Decide the first block's expansion and residual from the real stem
        width (a residual wherever shapes allow) instead of the original
        code's unscaled 16. This changes the network at multipliers <= 0.5
        (large) and > 1.0, where parameter files of the original network do
        not load or do not compute the same function; elsewhere it is the
        original network.
    original : str
        Whose code the network reproduces: ``'authors'`` (the authors'
        AsymmNet, github.com/Spark001/AsymmNet) or ``'gluoncv'`` (GluonCV's
        MobileNetV3, which decides expansion differently; ``asymmrate`` 0 only).
    norm_layer : HybridBlock class, optional
        The normalization layer of the stem, every block and the head
        (default ``nn.BatchNorm``; GluonCV's scripts inject ``SyncBatchNorm``).
        Parameter names do not depend on it.
    norm_kwargs : dict, optional
        Its keyword arguments (``{'num_devices': 4}``).
    """

    def __init__(self, arch='large', multiplier=1.0, asymmrate=1, shuffle_groups=0,
                 classes=1000, dropout=0.2, corrected_first_block=False, original='authors', norm_layer=None,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        if arch not in ARCHS:
            raise ValueError('unknown arch %r; expected one of %s' % (arch, ', '.join(sorted(ARCHS))))
        check_network_args(multiplier, asymmrate, shuffle_groups, classes, dropout)
        if not isinstance(corrected_first_block, bool):
            raise ValueError('corrected_first_block must be True or False, got %r' % (corrected_first_block,))
        if original not in ORIGINALS:
            raise ValueError('original must be one of %s, got %r' % (', '.join(sorted(ORIGINALS)), original))
        if original == 'gluoncv' and asymmrate:
            raise ValueError("original='gluoncv' (MobileNetV3) has no feature reuse: asymmrate must be 0, got %r"
                             % (asymmrate,))
        self.arch, self.multiplier = arch, multiplier
        self.asymmrate, self.shuffle_groups = int(asymmrate), int(shuffle_groups)
        self.classes, self.dropout = int(classes), dropout
        self.corrected_first_block, self.original = corrected_first_block, original
        self.norm = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        rows, head = ARCHS[arch]
        plans = plan_blocks(rows, multiplier, self.asymmrate, original, corrected_first_block,
                            name='%s, multiplier %g' % (arch, multiplier))
        width = make_divisible(STEM_CHANNELS * multiplier)
        head = make_divisible(head * multiplier)
        with self.name_scope():
            self._add_trunk(width, plans, head, 'hard_swish', arch)
            self.features.add(nn.GlobalAvgPool2D())
            self.features.add(nn.Conv2D(LAST_CHANNELS, 1, use_bias=False, in_channels=head))
            self.features.add(Act('hard_swish'))
            self._add_classifier(dropout, LAST_CHANNELS, use_bias=True)


def asymmnet_large(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000, dropout=0.2,
                   corrected_first_block=False, **kwargs):
    """AsymmNet-Large from "AsymmNet: Towards ultralight convolution neural networks using
    asymmetrical bottlenecks" (CVPR 2021 Workshops): the authors' network at every width.
    See :class:`AsymmNet`."""
    return AsymmNet('large', multiplier, asymmrate, shuffle_groups, classes, dropout, corrected_first_block,
                    'authors', **kwargs)


def asymmnet_small(multiplier=1.0, asymmrate=1, shuffle_groups=0, classes=1000, dropout=0.2,
                   corrected_first_block=False, **kwargs):
    """AsymmNet-Small from "AsymmNet: Towards ultralight convolution neural networks using
    asymmetrical bottlenecks" (CVPR 2021 Workshops): the authors' network at every width.
    See :class:`AsymmNet`."""
    return AsymmNet('small', multiplier, asymmrate, shuffle_groups, classes, dropout, corrected_first_block,
                    'authors', **kwargs)


def mobilenetv3_large(multiplier=1.0, classes=1000, dropout=0.2, corrected_first_block=False, **kwargs):
    """MobileNetV3-Large ("Searching for MobileNetV3", ICCV 2019): GluonCV's network at every
    width (its ``mobilenetv3_large`` files load); AsymmNet-Large with asymmrate 0 up to
    multiplier 1.0. See :class:`AsymmNet`."""
    return AsymmNet('large', multiplier, 0, 0, classes, dropout, corrected_first_block, 'gluoncv', **kwargs)


def mobilenetv3_small(multiplier=1.0, classes=1000, dropout=0.2, corrected_first_block=False, **kwargs):
    """MobileNetV3-Small ("Searching for MobileNetV3", ICCV 2019): GluonCV's network at every
    width (its ``mobilenetv3_small`` files load); AsymmNet-Small with asymmrate 0 up to
    multiplier 1.0. See :class:`AsymmNet`."""
    return AsymmNet('small', multiplier, 0, 0, classes, dropout, corrected_first_block, 'gluoncv', **kwargs)
