# Everything sets itself up from nothing: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo bench clean

$(STAMP): setup.py requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -r requirements-dev.txt
	$(PY) -m pip install -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/lint-imports
	AUTOX3D_REQUIRE_REFERENCE=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -ra tests
# The layers and the builder on the JAX backend: layer reference tests, X3D_XS equal to TensorFlow's.
	KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -ra tests/test_depthwise_conv3d.py \
		tests/test_pointwise_conv3d.py tests/test_frame_conv3d.py tests/test_backend_jax.py tests/test_segments_jax.py
	KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -ra tests/test_pseudo3d.py \
		-k "dilat or combine or stride or (folding and p3d)"

test-fast: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest -q -ra -m "not slow" tests

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(VENV)/bin/autox3d demo

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) benchmarks/bench_x3d.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
