"""The inference backends as data, and :func:`build_predictor`, which builds one.

A backend is a :class:`Backend`: a name, a precision, the runtime it runs in
and a function that builds its runner from a :class:`BuildSpec`. Adding one
is adding a row to :data:`REGISTRY`'s table.
"""
import os
import shutil
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from .. import fastops
from ..cpu import physical_cores
from ..deploy import BLOCKED, NHWC, DeployForm, deploy_network, deploys_by_default
from ..export import ort_layout
from .graph import inference_symbol, network_symbol, symbol_block
from .ort import export_onnx, ort_runner, ort_session
from .predictor import BackendError, Predictor, input_shape
from .quantize import default_fp32_layers, fp32_layers, mxnet_int8, ort_int8

__all__ = ['Backend', 'BuildSpec', 'REGISTRY', 'BACKENDS', 'INT8_BACKENDS', 'get_backend', 'build_predictor']


@dataclass
class BuildSpec:
    """What a backend's build function gets (see :func:`build_predictor` for the meaning of each)."""
    backend: str
    net: Any                        # the network or, when deployed, its deployment form
    batch_size: int
    input_size: Tuple[int, int]
    calib: Optional[np.ndarray] = None
    calib_mode: str = 'naive'
    workdir: Optional[str] = None
    threads: int = 1
    fp32_nodes: Sequence[str] = ()  # node names of the layers kept in float32 (INT8)
    fast_ops: bool = False          # resolved: use gluon_asymmnet.fastops
    onnx_file: Optional[str] = None
    ort_spinning: bool = True
    ort_reduce_range: Optional[bool] = None
    deployed: bool = False          # net is the deployment form (gluon_asymmnet.deploy)
    _temporary: Optional[str] = field(default=None, init=False, repr=False)

    @property
    def shape(self):
        return input_shape(self.batch_size, self.input_size)

    def folder(self, name):
        """``workdir/name`` (in a new temporary folder when no ``workdir`` was given), created."""
        if self.workdir is None and self._temporary is None:
            self._temporary = tempfile.mkdtemp(prefix='gluon_asymmnet_%s_' % self.backend)
        path = os.path.join(self.workdir or self._temporary, name)
        os.makedirs(path, exist_ok=True)
        return path

    def onnx(self):
        """The ONNX file of ``net`` at this input size (exported unless given)."""
        return self.onnx_file or export_onnx(self.net, self.folder('%s-%dx%d' % ((self.backend,) + self.input_size)),
                                             self.input_size)


@dataclass(frozen=True)
class Backend:
    """One inference backend.

    Attributes
    ----------
    name : str
    precision : str
        ``'fp32'`` or ``'int8'``.
    runtime : str
        ``'mxnet'`` (runs MXNet graphs of the network) or ``'onnxruntime'``
        (runs the network's ONNX export).
    build : callable
        ``build(spec) -> (run, info)``: ``run`` maps one float32 batch of
        ``spec.shape`` to logits, ``info`` is a dict for :attr:`Predictor.info`.
    fast_ops : bool
        Whether it runs the operators of :mod:`gluon_asymmnet.fastops` when
        they build.
    deploy_form : DeployForm, optional
        The network's deployment form it runs (:mod:`gluon_asymmnet.deploy`;
        ``build_predictor(..., deploy=False)`` turns it off); None: the
        network's own graph.
    summary : str
    """
    name: str
    precision: str
    runtime: str
    build: Callable
    fast_ops: bool = False
    deploy_form: Optional[DeployForm] = None
    summary: str = ''


def _mxnet_runner(block):
    def run(x):
        return block(mx.nd.array(x, ctx=mx.cpu())).asnumpy()
    return run


def _build_mxnet(spec):
    block = symbol_block(network_symbol(spec.net), spec.net)
    block.hybridize(static_alloc=True, static_shape=True)
    return _mxnet_runner(block), {}


def _build_mxnet_fused(spec):
    block = symbol_block(inference_symbol(spec.net, input_shape=spec.shape, fast_ops=spec.fast_ops), spec.net)
    block.hybridize(static_alloc=True, static_shape=True)
    block.optimize_for(mx.nd.zeros(spec.shape, ctx=mx.cpu()), backend='MKLDNN', static_alloc=True,
                       static_shape=True)
    return _mxnet_runner(block), {}


def _build_mxnet_int8(spec):
    folder = spec.folder('%s-b%d-%dx%d' % ((spec.backend, spec.batch_size) + spec.input_size))
    block, info = mxnet_int8(spec.net, spec.shape, spec.calib, spec.calib_mode, spec.fp32_nodes, folder,
                             spec.fast_ops)
    return _mxnet_runner(block), info


def _build_onnxruntime(spec):
    model = spec.onnx()
    if spec.deployed:  # hard swish and the SE scale in onnxruntime's blocked layout too
        model = ort_layout.optimize(model, spec.batch_size).SerializeToString()
    session = ort_session(model, spec.threads, spec.ort_spinning)
    return ort_runner(session), {'threads': spec.threads, 'spinning': spec.ort_spinning}


def _build_onnxruntime_int8(spec):
    folder = spec.folder('%s-%dx%d' % ((spec.backend,) + spec.input_size))
    session, info = ort_int8(spec.onnx(), folder, spec.shape, spec.calib, spec.fp32_nodes, spec.threads,
                             spec.ort_spinning, spec.ort_reduce_range)
    return ort_runner(session), dict(info, threads=spec.threads, spinning=spec.ort_spinning)


REGISTRY = OrderedDict((b.name, b) for b in (
    Backend('mxnet', 'fp32', 'mxnet', _build_mxnet,
            summary="the network's inference graph, hybridized static (what net.hybridize() runs)"),
    Backend('mxnet-fused', 'fp32', 'mxnet', _build_mxnet_fused, fast_ops=True, deploy_form=BLOCKED,
            summary='the rewritten inference graph after optimize_for(MKLDNN): conv + BN (+ add) + ReLU fused'),
    Backend('onnxruntime', 'fp32', 'onnxruntime', _build_onnxruntime, deploy_form=BLOCKED,
            summary='the ONNX export in onnxruntime (CPU, all graph optimizations), kept in its blocked layout'),
    Backend('mxnet-int8', 'int8', 'mxnet', _build_mxnet_int8, fast_ops=True, deploy_form=BLOCKED,
            summary="oneDNN INT8 of mxnet-fused's graph (mxnet.contrib.quantization), calibrated"),
    Backend('onnxruntime-int8', 'int8', 'onnxruntime', _build_onnxruntime_int8, deploy_form=NHWC,
            summary='onnxruntime static quantization (QDQ) of the ONNX export, calibrated'),
))
BACKENDS = tuple(REGISTRY)
INT8_BACKENDS = tuple(name for name, b in REGISTRY.items() if b.precision == 'int8')


def get_backend(name):
    """The :class:`Backend` called ``name``; ValueError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ValueError('unknown backend %r; choose from %s' % (name, ', '.join(REGISTRY)))
    return REGISTRY[name]


def _use_fast_ops(fast_ops, info):
    """Resolve ``build_predictor``'s ``fast_ops`` (None: when the library builds), noting it in ``info``."""
    if fast_ops is False:
        info['fast_ops'] = False
        return False
    try:
        fastops.load()
    except fastops.FastOpsError as err:
        if fast_ops:
            raise BackendError(str(err)) from err
        warnings.warn('gluon_asymmnet.fastops unavailable, MXNet backends run MXNet\'s slower element-wise '
                      'operators: %s' % err)
        info.update(fast_ops=False, fast_ops_error=str(err))
        return False
    info['fast_ops'] = True
    return True


def build_predictor(backend, net, batch_size=1, input_size=224, calib=None, workdir=None, threads=None,
                    calib_mode='naive', exclude=None, onnx_file=None, ort_spinning=True, fast_ops=None,
                    ort_reduce_range=None, deploy=None):
    """Build one backend for a fixed batch size and input size.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS`.
    net : HybridBlock
        An initialized network (its parameters are shared, not copied, by the
        MXNet backends; the ONNX ones export it).
    batch_size : int
    input_size : int or (int, int)
    calib : numpy.ndarray, optional
        Calibration images ``(N, 3, H, W)``, preprocessed like the evaluation
        data; required by the INT8 backends (resized when H, W differ).
    workdir : str, optional
        Where ONNX and INT8 files go, and stay (default: a temporary folder,
        removed once the predictor is built).
    threads : int, optional
        onnxruntime intra-op threads (default: physical cores).
    calib_mode : str
        ``mxnet-int8`` calibration; only ``'naive'`` (min/max of the
        calibration outputs): MXNet 1.9.1's ``'entropy'`` thresholds make its
        int8 oneDNN convolution fail ("Expect int8 when data_min < 0.0").
    exclude : sequence of str, optional
        Structural names of convolutions and global poolings to keep in
        float32 (INT8 backends), shell patterns allowed (``'features.0'``,
        ``'*.se.*'``); default
        :func:`~gluon_asymmnet.inference.quantize.default_fp32_layers`. ``()``
        quantizes everything.
    onnx_file : str, optional
        The ONNX export at this input size
        (:func:`~gluon_asymmnet.inference.ort.export_onnx`) of what the
        backend runs (with ``deploy``, the deployment form for this backend
        and batch size), to skip exporting again.
    ort_spinning : bool
        Let onnxruntime's idle worker threads spin (its default, fastest
        when it runs alone).
    fast_ops : bool, optional
        ``mxnet-fused`` and ``mxnet-int8`` with the operators of
        :mod:`gluon_asymmnet.fastops`. Default: when the library builds
        (else a warning, and ``info['fast_ops_error']`` says why); True
        requires it, False turns it off.
    ort_reduce_range : bool, optional
        ``onnxruntime-int8`` with 7-bit weights; default: when the CPU has
        no VNNI (:func:`gluon_asymmnet.cpu.cpu_has_vnni`).
    deploy : bool, optional
        Run the network's deployment form
        (:func:`gluon_asymmnet.deploy.deploy_network`, the backend's
        :attr:`Backend.deploy_form` for this batch and input size; in
        ``onnxruntime`` also :func:`~gluon_asymmnet.export.ort_layout.optimize`)
        in every backend that has one (all but ``mxnet``). Default: for the
        networks it speeds up (:func:`gluon_asymmnet.deploy.deploys_by_default`);
        False runs the network's own inference graph.

    Returns
    -------
    Predictor
    """
    entry = get_backend(backend)
    if calib_mode != 'naive':
        raise ValueError("calib_mode %r is not supported: MXNet 1.9.1's entropy calibration breaks its int8 "
                         "oneDNN convolution; use 'naive'" % (calib_mode,))
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError('batch_size must be a positive integer, got %r' % (batch_size,))
    size = (input_size, input_size) if np.isscalar(input_size) else tuple(input_size)
    info = {}
    kept, nodes = fp32_layers(net, default_fp32_layers(net, backend) if exclude is None else list(exclude))
    if entry.precision == 'int8':
        info['fp32_layers'] = kept
    deployed = entry.deploy_form is not None and (deploys_by_default(net) if deploy is None else bool(deploy))
    if deployed:
        net = deploy_network(net, int(batch_size), size, entry.deploy_form)
        # The layers kept in FP32 under the deployment form's names too (an onnx_file may hold either form).
        nodes = list(nodes) + net.layer_names(kept)
    if entry.deploy_form is not None:
        info['deployed'] = deployed
    spec = BuildSpec(backend, net, int(batch_size), size, calib, calib_mode, workdir, threads or physical_cores(),
                     nodes, entry.fast_ops and _use_fast_ops(fast_ops, info), onnx_file, ort_spinning,
                     ort_reduce_range, deployed)
    try:
        run, built = entry.build(spec)
        info.update(built)
        run(np.zeros(spec.shape, np.float32))
    finally:
        if spec._temporary is not None:  # the runtimes hold what they loaded: the files are not read again
            shutil.rmtree(spec._temporary, ignore_errors=True)
    return Predictor(backend, run, spec.batch_size, size, entry.precision, info)
