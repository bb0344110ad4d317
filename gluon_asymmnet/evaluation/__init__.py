"""What ``eval.py`` does, as functions: load a model, build evaluation data, evaluate, summarise, benchmark.

- :mod:`.models`: :func:`load_model`, a model by name with a parameter file
  of any layout (:func:`gluon_asymmnet.load_checkpoint`), with the store's
  weights (``pretrained``), or an exported symbol JSON + params
  (``model_prefix``); :func:`random_weights` for speed-only runs.
- :mod:`.batches`: :func:`eval_batches`, validation batches with GluonCV's
  preprocessing (resize the short side to ``ceil(input_size / crop_ratio)``,
  centre crop) from ImageNet RecordIO, an ImageNet folder, any folder of
  class subfolders, or the bundled demo digits; :func:`calibration_images`.
- :mod:`.evaluate`: :func:`evaluate`, top-1/top-5 through
  :func:`gluon_asymmnet.metrics.evaluate_accuracy`, the function the
  training's validation runs, so a checkpoint evaluates to the figures
  printed when it was saved.
- :mod:`.summary`: :func:`summary_rows` / :func:`format_summary`, MACs and
  parameters of one configuration or of the whole ``counts.csv`` grid, beside
  the published figures (``published.json``, and the store's
  ``pretrained.json``).
- :mod:`.benchmark`: :func:`benchmark_model`, the inference backends side by
  side (:func:`gluon_asymmnet.inference.benchmark`).
- :mod:`.cli`: ``eval.py``'s arguments, :func:`main`; :func:`run_defaults`
  fills what a checkpoint of ``train_imagenet.py`` brings (its ``.json``
  names the model, the classes and the preprocessing:
  :func:`gluon_asymmnet.run_meta.read_run_info`), so it needs no model flags.
"""
from .batches import calibration_images, eval_batches
from .benchmark import benchmark_model
from .cli import build_parser, main, run_defaults
from .errors import EvalError
from .evaluate import evaluate
from .models import load_model, random_weights
from .summary import SUMMARY_RATES, format_summary, layer_table, published_figures, summary_rows

__all__ = ['EvalError', 'load_model', 'random_weights', 'eval_batches', 'calibration_images',
           'evaluate', 'SUMMARY_RATES', 'published_figures', 'summary_rows', 'format_summary',
           'layer_table', 'benchmark_model', 'build_parser', 'run_defaults', 'main']
