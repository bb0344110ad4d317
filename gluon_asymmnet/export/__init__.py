"""Ship a network as MXNet symbol JSON + parameters, and as ONNX, verified against Gluon.

``export(net, prefix)`` writes

- ``prefix-symbol.json`` and ``prefix-0000.params``: loadable by
  ``mx.gluon.SymbolBlock.imports`` and by the Module API
  (``mx.model.load_checkpoint(prefix, 0)``); the parameter file also loads
  back into a Gluon network with :func:`gluon_asymmnet.load_checkpoint`
  (layout ``export``);
- ``prefix-export.json``: what the files were made for (input size, batch
  size, preprocessing, deployment form) and the sha256 of each, so that
  readers use the sizes and refuse files of two different exports
  (:mod:`gluon_asymmnet.export_record`); exports into one folder take turns
  for their final renames;
- ``prefix.onnx``: MXNet's ONNX exporter (opset of the installed onnx), with a
  dynamic batch dimension named ``batch``; the weights are stored as graph
  initializers only (MXNet lists them as graph inputs too, which keeps
  onnxruntime from folding them as constants, so they are removed from the
  inputs); checked with ``onnx.checker``.

With ``preprocess=True`` the exported graph takes uint8 RGB images in NHWC
layout and normalises them inside, like GluonCV's ``export_block``: with the
``mean``/``std`` given, else the network's ``preprocess_config`` (what
:func:`gluon_asymmnet.get_model` sets from the registry and the store entry:
ImageNet's for the released weights).

The symbol is an **inference graph**, for inference only: by default the
network's deployment form (:func:`gluon_asymmnet.deploy.deploy_network`:
the same logits without the feature-reuse concat and the channel shuffle,
BatchNorm folded, channels padded for the runtimes' blocked layouts), and the
ONNX file is also rewritten for onnxruntime's blocked layout
(:func:`gluon_asymmnet.export.ort_layout.optimize`); with a
``batch_size`` both are chosen for it and the ONNX batch dimension is fixed.
The deployment form's parameter file loads only with its symbol.
``deploy=False`` exports the network's own inference graph, whose parameter
file also loads back into the Gluon network (:func:`gluon_asymmnet.load_checkpoint`).
Either uses oneDNN's concat, whose backward pass fails on CPUs ("could not
construct a sub-memory"). ``trainable=True`` writes the network's training
graph as the symbol instead (MXNet's concat on ``dim=-3``; the same values;
never the deployment form): imported with ``SymbolBlock.imports`` or the
Module API it trains and fine-tunes on a oneDNN CPU. ONNX always comes from
an inference graph.

Command line (a checkpoint of ``train_imagenet.py`` needs no model flags: its
``.json`` names the model, classes and preprocessing; the model flags are
those of ``train_imagenet.py`` and ``eval.py``, :mod:`gluon_asymmnet.model_flags`)::

    python -m gluon_asymmnet.export --model asymmnet_large --params FILE --prefix out/asymmnet_large
    python -m gluon_asymmnet.export --params run/0.9500-pets-asymmnet_small-9-best.params --prefix out/pets

Modules: :mod:`.exporter` (:func:`export`, :func:`compare_exported`),
:mod:`.ort_layout` (the ONNX rewrites for onnxruntime), :mod:`.cli` (the
command line).
"""
from .cli import build_parser, main
from .exporter import FORMATS, MEAN_RGB, STD_RGB, TOLERANCE, ExportError, Preprocess, compare_exported, export

__all__ = ['MEAN_RGB', 'STD_RGB', 'FORMATS', 'TOLERANCE', 'ExportError', 'Preprocess', 'export',
           'compare_exported', 'build_parser', 'main']
