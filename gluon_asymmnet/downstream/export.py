"""Export of the downstream models: symbol JSON and ONNX, backbone in its deployment form, checked against Gluon.

What is exported is the network up to its raw outputs, one tensor:

- MobilePose: the heatmaps ``(N, joints, H/4, W/4)``, the whole model;
- CenterNet: ``sigmoid(heatmap)``, ``wh`` and ``reg`` concatenated along
  channels, ``(N, classes + 4, H/4, W/4)``. The peak picking (3x3 max-pool
  comparison) and the top-k decoding stay outside: ``topk`` has no
  MXNet-to-ONNX conversion;
- YOLOv3: each output layer's prediction convolution, flattened per image and
  concatenated from stride 32 to 8, ``(N, sum of anchors x (5 + classes) x H x
  W)``. Box decoding and NMS (``box_nms``) stay outside: MXNet's ONNX exporter
  converts neither.

The backbone is :func:`gluon_asymmnet.deploy.deploy_network`'s form (BatchNorm
folded, no feature-reuse concat, widths padded for blocked layouts; a padded
stage output is cut back to its width before a head reads it); the heads are
exported as they are. Inputs must be multiples of 32 in height and width (any
aspect: 256x192 is GluonCV's pose size), so the YOLO upsamplings meet their
routes without cropping.
"""
import contextlib
import os
import types

import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

import numpy as np

from ..deploy import BLOCKED, DeployNetwork, _conv, _fold
from ..export import FORMATS, ExportError, compare_exported, export

__all__ = ['TOLERANCE', 'inference_network', 'export_downstream']

# Largest relative error accepted between a file and the Gluon network, for both formats, or 5 times the
# network's float32 noise floor when larger: rounding alone moves these deep outputs by 1e-5 and more
# (measured: a 1e-7 relative change of the input moves MobilePose-L's heatmaps by 1.2e-5).
TOLERANCE = 1e-4


class _Stage(HybridBlock):
    """Layers in sequence; :meth:`route` cuts the output back to ``width`` channels where the layers padded it."""

    def __init__(self, layers, width=None, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            for layer in layers:
                self.body.add(layer)

    def hybrid_forward(self, F, x):
        return self.body(x)

    def route(self, F, x):
        """The stage's output as a head reads it: its real channels only."""
        return F.slice_axis(x, axis=1, begin=0, end=self.width) if self.width else x


def _stages(sequences, size, batch_size, form, deploy):
    """The backbone's stages (HybridSequentials of its layers), or one deployment form of them cut at the same layers."""
    if not deploy:
        return [_Stage(list(s), prefix='stage%d_' % i) for i, s in enumerate(sequences)]
    layers = nn.HybridSequential(prefix='')
    for s in sequences:
        for layer in s:
            layers.add(layer)
    shim = types.SimpleNamespace(features=layers, output=nn.HybridSequential(prefix=''))
    children = list(DeployNetwork(shim, batch_size, size, form, prefix='deploy_').features._children.items())
    real = deployed = mx.sym.var('data')
    stages, start = [], 0
    for i, s in enumerate(sequences):
        end = start + len(s)
        # Deployed children keep the original layer index as their name (folded BatchNorms drop out).
        part = [layer for name, layer in children if start <= int(name) < end]
        real = s(real)
        for layer in part:
            deployed = layer(deployed)
        width, padded = _channels(real, size), _channels(deployed, size)
        stages.append(_Stage(part, width if padded != width else None, prefix='stage%d_' % i))
        start = end
    return stages


def _channels(symbol, size):
    return symbol.infer_shape(data=(1, 3) + tuple(size))[1][0][1]


class _DUC(HybridBlock):
    """GluonCV's DUC (3x3 conv, BatchNorm, ReLU, pixel shuffle) with the BatchNorm folded and the shuffle as
    ONNX's DepthToSpace.

    The pixel shuffle reads channel ``c * f * f + s`` for sub-pixel ``s`` of
    output channel ``c`` (DepthToSpace's CRD order), MXNet's ``depth_to_space``
    channel ``s * C + c`` (DCR, the order its ONNX export writes): the
    convolution's output channels are permuted to match (exact; ReLU acts
    per channel). The reshapes of the pixel shuffle have no ONNX conversion.
    """

    def __init__(self, duc, deploy=True, **kwargs):
        super().__init__(**kwargs)
        f1, f2 = duc.pixel_shuffle._factors
        if f1 != f2:
            raise ValueError('DUC with unequal upscale factors %d, %d cannot be exported' % (f1, f2))
        self.factor = f1
        weight, bias = _fold(duc.conv, duc.bn)
        c = weight.shape[0] // (f1 * f1)
        order = np.array([k * f1 * f1 + s for s in range(f1 * f1) for k in range(c)])
        with self.name_scope():
            self.conv = _conv(weight[order], bias[order], 'duc', duc.conv.weight, pad=(1, 1), prefix='conv_')

    def hybrid_forward(self, F, x):
        return F.depth_to_space(F.relu(self.conv(x)), block_size=self.factor)


def _upsampling(sequence):
    """A Sequential with GluonCV's DUC blocks in their export form, other layers shared."""
    from gluoncv.nn.block import DUC
    out = nn.HybridSequential(prefix='')
    for layer in sequence:
        out.add(_DUC(layer, prefix='duc%d_' % len(out)) if isinstance(layer, DUC) else layer)
    return out


class _Pose(HybridBlock):
    def __init__(self, net, stages, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.backbone = stages[0]
            self.upsampling = _upsampling(net.upsampling)

    def hybrid_forward(self, F, x):
        return self.upsampling(self.backbone.route(F, self.backbone(x)))


class _CenterNet(HybridBlock):
    def __init__(self, net, stages, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.backbone = stages[0]
            self.upsampling = _upsampling(net.base_network.upsampling)
            self.heads = net.heads

    def hybrid_forward(self, F, x):
        y = self.upsampling(self.backbone.route(F, self.backbone(x)))
        heatmap, wh, reg = [head(y) for head in self.heads]
        return F.concat(F.sigmoid(heatmap), wh, reg, dim=1)


class _YOLO(HybridBlock):
    def __init__(self, net, stages, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.stages = nn.HybridSequential(prefix='')
            for stage in stages:
                self.stages.add(stage)
            self.yolo_blocks = net.yolo_blocks
            self.predictions = nn.HybridSequential(prefix='')
            for output in net.yolo_outputs:
                self.predictions.add(output.prediction)
            self.transitions = net.transitions

    def hybrid_forward(self, F, x):
        routes = []
        for stage in self.stages:
            x = stage(x)
            routes.append(stage.route(F, x))
        x = routes[-1]
        outputs = []
        for i, (block, prediction) in enumerate(zip(self.yolo_blocks, self.predictions)):
            x, tip = block(x)
            outputs.append(F.reshape(prediction(tip), (0, -1)))
            if i == len(routes) - 1:
                break
            x = F.UpSampling(self.transitions[i](x), scale=2, sample_type='nearest')
            x = F.concat(x, routes[-2 - i], dim=1)
        return F.concat(*outputs, dim=1)


def _kind(net):
    from .center_net import CenterNet
    from .pose import MobilePose
    from .yolo3 import YOLOV3
    for cls, kind in ((MobilePose, 'pose'), (CenterNet, 'center_net'), (YOLOV3, 'yolo3')):
        if isinstance(net, cls):
            return kind
    raise ValueError('export_downstream takes a mobile_pose_*, center_net_* or yolo3_* model of gluon_asymmnet, got %s'
                     % type(net).__name__)


def _size(input_size):
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if len(size) != 2 or any(s <= 0 or s % 32 for s in size):
        raise ValueError('input_size must be (height, width) in positive multiples of 32 (the backbone\'s stride), '
                         'got %r' % (input_size,))
    return size


def inference_network(net, input_size=(256, 192), batch_size=None, form=BLOCKED, deploy=True):
    """The HybridBlock that computes ``net``'s raw output (module notes), sharing ``net``'s head parameters.

    Parameters
    ----------
    net : MobilePose, CenterNet or YOLOV3
        An initialized downstream model of this package.
    input_size : int or (int, int)
        Height and width, multiples of 32.
    batch_size : int, optional
        The batch size the deployment form is chosen for (see :func:`gluon_asymmnet.deploy.deploy_network`).
    form : DeployForm
        The backbone's deployment form (default ``BLOCKED``).
    deploy : bool
        False: the backbone as it is (the reference the export is checked against).
    """
    kind = _kind(net)
    size = _size(input_size)
    for p in net.collect_params().values():
        if p._data is None:
            raise ValueError('parameter %s is not initialized: load weights or call initialize() first' % p.name)
    if kind == 'pose':
        sequences = [net.features[0]]
    elif kind == 'center_net':
        sequences = [net.base_network.feature]
    else:
        sequences = list(net.stages)
    stages = _stages(sequences, size, batch_size, form, deploy)
    block = {'pose': _Pose, 'center_net': _CenterNet, 'yolo3': _YOLO}[kind](net, stages, prefix=net.prefix + 'raw_')
    block.preprocess_config = getattr(net, 'preprocess_config', None)
    return block


def export_downstream(net, prefix, input_size=(256, 192), formats=FORMATS, batch_size=None, deploy=True,
                      verify=True, form=BLOCKED, fixed_batch=True):
    """Export a downstream model's raw output (module notes) as symbol JSON and/or ONNX, checked against Gluon.

    Parameters
    ----------
    net : MobilePose, CenterNet or YOLOV3
    prefix : str
        Writes ``prefix-symbol.json``, ``prefix-0000.params``, ``prefix.onnx``.
    input_size : int or (int, int)
        Height and width (multiples of 32); ONNX keeps them fixed, the batch dynamic unless ``batch_size``.
    formats : iterable of str
        ``'symbol'``, ``'onnx'``.
    batch_size : int, optional
        Chooses the backbone's deployment form and (``fixed_batch``) fixes the ONNX batch dimension.
    deploy : bool
        The backbone in its deployment form (default) or as it is.
    form : DeployForm
        The backbone's deployment form: ``BLOCKED`` (onnxruntime FP32, oneDNN) or ``NHWC`` (onnxruntime INT8).
    fixed_batch : bool
        False: the ONNX batch stays dynamic with a ``batch_size`` (onnxruntime's quantization calibrates
        in batches of its own).
    verify : bool
        Compare each file with the Gluon network on random input (batches 1 and 2) and raise
        :class:`~gluon_asymmnet.export.ExportError` beyond :data:`TOLERANCE`.

    Returns
    -------
    dict
        The paths written (as :func:`gluon_asymmnet.export`); with ``verify`` also ``errors`` (format ->
        relative error) and the ``tolerance`` they were held to.
    """
    block = inference_network(net, input_size, batch_size, form, deploy=deploy)
    with _raw_onnx_tensors():
        files = export(block, prefix, _size(input_size), formats, deploy=False)
    if (batch_size and fixed_batch and 'onnx' in files) or deploy:
        _rerecord(files, prefix, _size(input_size), batch_size if fixed_batch else None, deploy)
    if verify:
        reference = inference_network(net, input_size, deploy=False)
        reference.hybridize()
        batches = (batch_size,) if batch_size and fixed_batch else (1, 2)
        errors = compare_exported(reference, files, _size(input_size), batch_sizes=batches)
        tolerance = max(TOLERANCE, 5 * _noise_floor(reference, _size(input_size), batches[-1]))
        for name, err in errors.items():
            if not err < tolerance:
                raise ExportError('export of %s to %s: the %s file differs from the Gluon network by %.3g relative '
                                  '(more than %.3g)' % (type(net).__name__, prefix, name, err, tolerance))
        files = dict(files, errors=errors, tolerance=tolerance)
    return files


def _noise_floor(net, size, batch, rel=1e-7):
    """How far float32 rounding moves ``net``'s output: its relative change for a ``rel`` change of the input."""
    from ..metrics import relative_error
    rng = np.random.RandomState(0)
    x = rng.standard_normal((batch, 3) + size).astype(np.float32)
    step = rel * np.abs(x).max() * rng.choice([-1.0, 1.0], x.shape)
    return relative_error(net(mx.nd.array(x + step)).asnumpy(), net(mx.nd.array(x)).asnumpy())


@contextlib.contextmanager
def _raw_onnx_tensors():
    """MXNet's ONNX exporter with its weights stored as raw bytes instead of a repeated float field.

    The exporter hands every weight to ``onnx.helper.make_tensor`` as a Python
    list; filling the protobuf's repeated field from it took 11 of 26 s for a
    YOLOv3 (measured). Raw bytes hold the same values and load the same.
    """
    import onnx
    from onnx import helper
    original = helper.make_tensor

    def make_tensor(name, data_type, dims, vals, raw=False):
        if raw or data_type != onnx.TensorProto.FLOAT or not isinstance(vals, list):
            return original(name, data_type, dims, vals, raw)
        return original(name, data_type, dims, np.asarray(vals, dtype='<f4').tobytes(), raw=True)
    helper.make_tensor = make_tensor
    try:
        yield
    finally:
        helper.make_tensor = original


def _rerecord(files, prefix, size, batch_size, deploy):
    """The ONNX batch fixed to ``batch_size`` (atomically), and the export record rewritten to say so, with the
    files' new hashes and the backbone's deployment form (:mod:`gluon_asymmnet.export_record`)."""
    import onnx
    from ..export_record import prefix_lock, record_path, write_record
    from ..files import atomic_write
    folder = os.path.dirname(os.path.abspath(prefix))
    with prefix_lock(folder):
        if batch_size and 'onnx' in files:
            model = onnx.load(files['onnx'])
            for value in list(model.graph.input) + list(model.graph.output):
                dims = value.type.tensor_type.shape.dim
                if dims:
                    dims[0].ClearField('dim_param')
                    dims[0].dim_value = int(batch_size)
            atomic_write(files['onnx'], lambda tmp: onnx.save(model, tmp))
        write_record(record_path(prefix), {kind: (os.path.basename(path), path) for kind, path in files.items()},
                     size, batch_size, False, deploy, False)
