# The two commands a new machine needs (README):
#   make demo   installs avsync and checks a generated test clip with a known offset
#   make test   runs the test suite (installs first if needed)
PYTHON ?= python3
STAMP := .install.stamp

.PHONY: demo test install system-deps lint bench

demo: $(STAMP)
	avsync demo

test: $(STAMP)
	$(PYTHON) -m pytest -q

install: $(STAMP)

# pip install -e: editable, so the tests run the code in this folder.
# torch is pinned in pyproject.toml: the CPU wheel, not a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(MAKE) system-deps
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages: PortAudio for sounddevice (microphone capture).
system-deps:
	@if ! ldconfig -p | grep -q libportaudio.so.2; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libportaudio2 >/dev/null; \
	  else echo "note: install libportaudio2 for microphone capture (sudo apt-get install libportaudio2)"; fi; \
	fi

lint: $(STAMP)
	ruff check avsync tests tools

bench: $(STAMP)
	$(PYTHON) tools/bench.py check
