#!/usr/bin/env python
"""Evaluate, summarise or benchmark AsymmNet/MobileNetV3 models: see ``python eval.py --help``.

Examples::

    python eval.py --model asymmnet_large --params model.params --rec-val val.rec
    python eval.py --model-prefix export/asymmnet_large --data-dir ~/imagenet
    python eval.py --summary
    python eval.py --summary --model asymmnet_small --width-scale 0.5 --verbose
    python eval.py --benchmark --model asymmnet_large
"""
import os
import sys

from gluon_asymmnet.cpu import configure_omp_threads

if __name__ == '__main__':
    # Both before MXNet is imported, which reads them once.
    if '--benchmark' in sys.argv[1:]:
        # MXNet runs each operator on the calling thread: with the threaded engine, batch-1 latency
        # doubled after any large workload in the process (see gluon_asymmnet.inference.benchmark).
        os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
    configure_omp_threads('eval.py')
    from gluon_asymmnet.evaluation import main
    sys.exit(main())
