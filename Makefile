# The two commands a new machine needs (README):
#   make demo   installs avsync and checks a generated test clip with a known offset
#   make test   runs the test suite (installs first if needed)
# Everything Python goes into a virtual environment (.venv): Debian 12's system Python
# refuses `pip install` outside one (PEP 668, "externally-managed-environment").
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := .install.stamp
TEST_STAMP := .test-deps.stamp
# Real servers the live tests run on 127.0.0.1: Prometheus (+ promtool) and GStreamer's
# RTSP server (run by Debian's python3, which has the gi bindings); Chromium renders the
# HTML reports in the tests.
TEST_DEBS := prometheus chromium gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi \
	gstreamer1.0-libav gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly

.PHONY: demo test install system-deps lint bench

demo: $(STAMP)
	$(VENV)/bin/avsync demo

test: $(STAMP) $(TEST_STAMP)
	$(VPY) -m pytest -q

install: $(STAMP)

# pip install -e: editable, so the tests run the code in this folder.
# torch is pinned in pyproject.toml: the CPU wheel, not a multi-GB CUDA build.
$(STAMP): pyproject.toml $(VPY)
	$(VPY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(VPY):
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)

# Debian packages: PortAudio for sounddevice (microphone capture), and python3-venv
# where the system Python lacks ensurepip (a fresh Debian 12 does).
system-deps:
	@missing=""; \
	ldconfig -p | grep -q libportaudio.so.2 || missing="libportaudio2"; \
	$(PYTHON) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: install $$missing (sudo apt-get install $$missing)"; fi; \
	fi

# Debian packages for the live tests; without root, say what to install (the tests
# that need them skip with that reason).
$(TEST_STAMP):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(TEST_DEBS) >/dev/null && touch $(TEST_STAMP); \
	else echo "note: the live tests need: sudo apt-get install $(TEST_DEBS)"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check avsync tests tools

bench: $(STAMP)
	$(VPY) tools/bench.py check
