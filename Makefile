# `make demo` and `make test` each set up .venv (Python 3.11) when missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Two MXNet engines per core oversubscribe a 2-core machine: one OpenMP thread each (the command
# lines that tests start would otherwise take every physical core).
TEST_WORKERS ?= 2

.PHONY: setup demo test bench clean

# The fused CPU operators of the inference backends (gluon_asymmnet/fastops), compiled once into
# $$MXNET_HOME/gluon_asymmnet (default ~/.mxnet/gluon_asymmnet).
setup: $(STAMP)
	$(PY) -m gluon_asymmnet.fastops

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.2
	$(PY) -m pip install --quiet -r requirements.txt
	# onnxruntime's numpy metadata is wrong for us: see requirements-nodeps.txt.
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -c "import mxnet, gluoncv, onnxruntime, onnx, sklearn, pycocotools.coco"
	touch $(STAMP)

demo: setup
	$(PY) -m gluon_asymmnet.demo

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) -q tests

bench: setup
	$(PY) benchmarks/bench_train_infer.py

clean:
	rm -rf $(VENV)
