"""The operations the blocks are written in, each spelled so that MXNet picks the right kernel.

Every function computes what its name says, with the same values in every
mode; what differs is which kernel MXNet 1.9.1 runs (package notes). ``F`` is
``mx.nd`` or ``mx.sym``, as in ``hybrid_forward``. :func:`plain_relu_grad` and
:func:`plain_pool_grad` say where a unit needs the ``plain_grad`` form.
"""
from .modes import graph_mode

__all__ = ['relu', 'relu6', 'hard_sigmoid', 'hard_swish', 'global_pool', 'channel_scale', 'channel_concat',
           'aligned_concat', 'channel_shuffle', 'residual_add', 'plain_relu_grad', 'plain_pool_grad']


def relu(F, x, plain_grad=False):
    """``max(x, 0)``: oneDNN's ``Activation``, which fuses into the preceding convolution.

    With ``plain_grad``, in computations built for training it is
    ``clip(x, 0, inf)``, whose backward pass writes a plain-layout gradient
    (defect 2 of the package notes; see :func:`plain_relu_grad`).
    """
    if plain_grad and graph_mode(F) == 'train':
        return F.clip(x, 0.0, float('inf'))
    return F.Activation(x, act_type='relu')


def relu6(F, x):
    """``min(max(x, 0), 6)`` (MobileNetV2) as MXNet's ``clip``, in every mode.

    Its backward pass is MXNet's own kernel, which writes a plain-layout
    gradient, so the BatchNorm before it never meets the mixed blockings of
    defect 2. In inference graphs oneDNN's subgraph backend fuses it into the
    preceding convolution (``optimize_for('MKLDNN')``: conv + BN + clip), and
    it exports to ONNX as ``Clip``.
    """
    return F.clip(x, 0.0, 6.0)


def hard_sigmoid(F, x):
    """``relu6(x + 3) / 6`` as MXNet's single ``hard_sigmoid`` operator (GluonCV spells it as four)."""
    return F.hard_sigmoid(x, alpha=1.0 / 6, beta=0.5)


def hard_swish(F, x):
    """``x * hard_sigmoid(x)``.

    Outside training, ``x`` first goes through a reshape to its own shape:
    oneDNN's reshape writes plain layout, so ``x`` is reordered once instead of
    once in each of ``hard_sigmoid`` and the product, which are MXNet kernels
    (+13 % inference). :mod:`gluon_asymmnet.fastops` replaces the whole
    pattern with one operator.
    """
    if graph_mode(F) != 'train':
        x = F.reshape(x, shape=(0, 0, 0, 0))
    return x * hard_sigmoid(F, x)


def global_pool(F, x, plain_grad=False):
    """The mean over H and W, kept as (N, C, 1, 1): oneDNN's global average pooling.

    With ``plain_grad``, in computations built for training it is ``mean``
    over axes 2 and 3, whose backward pass MXNet runs itself (defect 3 of the
    package notes; see :func:`plain_pool_grad`).
    """
    if plain_grad and graph_mode(F) == 'train':
        return F.mean(x, axis=(2, 3), keepdims=True)
    return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg')


def channel_scale(F, x, scale):
    """``x`` (N, C, H, W) times ``scale`` (N, C, 1, 1): the squeeze-and-excitation rescale."""
    return F.broadcast_mul(x, scale)


def channel_concat(F, *parts):
    """Concatenate NCHW tensors along channels.

    Unless the computation is known to run forward only, the channel axis is
    named ``dim=-3``: MXNet sends only concats with ``dim > 0`` to oneDNN,
    whose backward pass fails on AsymmNet's channel offsets (defect 1 of the
    package notes), so MXNet's own concat runs forward and backward.
    Forward-only computations use oneDNN's concat (``dim=1``).
    """
    return F.concat(*parts, dim=1 if graph_mode(F) == 'inference' else -3)


def aligned_concat(F, *parts):
    """Concatenate NCHW tensors whose widths are multiples of oneDNN's channel block, forward only.

    oneDNN's concat (``dim=1``) in every mode: at block-aligned offsets it
    copies without leaving the blocked layout. Only inference graphs use it
    (:mod:`gluon_asymmnet.deploy`): its backward pass is defect 1's.
    """
    return F.concat(*parts, dim=1)


def channel_shuffle(F, x, groups, channels):
    """Channel shuffle of an NCHW tensor with ``channels`` channels in ``groups`` groups.

    View as ``(N, groups, channels / groups, H * W)``, swap axes 1 and 2, view
    back: output channel ``i * groups + j`` is input channel
    ``j * channels / groups + i``. Only reshape codes 0 and -1, ``swapaxes``
    and ``reshape_like`` are used, so the graph stays static for any batch size
    and exports to ONNX. (``transpose`` would export more simply, but its
    oneDNN backward fails here: "could not create a primitive descriptor for a
    reorder primitive".)
    """
    y = F.reshape(x, shape=(0, groups, channels // groups, -1))
    return F.reshape_like(F.swapaxes(y, 1, 2), x)


def residual_add(F, x, y):
    """``x + y`` as ``elemwise_add``, oneDNN's sum, in imperative calls too.

    ``+`` on NDArrays is ``broadcast_add``, whose plain output then meets
    blocked ones in the next concat, which then runs oneDNN's slow reference
    concat kernel.
    """
    return F.elemwise_add(x, y)


def plain_relu_grad(channels, next_channels, use_se):
    """Whether a depthwise unit's ReLU needs :func:`relu`'s ``plain_grad``.

    oneDNN blocks a width by 16 if 16 divides it, else by 8 (AVX-512). When the
    depthwise width and the width of the 1x1 convolution after it differ in
    that, the convolution's backward hands ReLU and BatchNorm a gradient
    blocked unlike the data (defect 2). With squeeze-and-excitation between
    them the gradient arrives through the SE rescale instead.
    """
    return not use_se and (channels % 16 == 0) != (next_channels % 16 == 0)


def plain_pool_grad(act):
    """Whether squeeze-and-excitation after activation ``act`` needs :func:`global_pool`'s ``plain_grad``.

    After oneDNN's ReLU the pooled input is in a blocked layout unlike the
    gradient that comes back from the 1x1 convolution (defect 3).
    """
    return act == 'relu'
