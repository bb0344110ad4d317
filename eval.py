#!/usr/bin/env python
"""Evaluate, summarise or benchmark AsymmNet/MobileNetV3 models: see ``python eval.py --help``.

Examples::

    python eval.py --model asymmnet_large --params model.params --rec-val val.rec
    python eval.py --model-prefix export/asymmnet_large --data-dir ~/imagenet
    python eval.py --summary
    python eval.py --summary --model asymmnet_small --width-scale 0.5 --verbose
    python eval.py --benchmark --model asymmnet_large
"""
import sys

from gluon_asymmnet.evaluation import main

if __name__ == '__main__':
    sys.exit(main())
