# Two entry points that work on a fresh machine with only Python 3.10+ and make:
#   make example   set up .venv, install headwater, run examples/hello.py on the embedded defaults
#   make test      set up .venv with the dev extras and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: example test venv dev browser bench card-assets cards-assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python card-assets
	$(BIN)/python -m pip install -q -e .

dev: $(BIN)/python card-assets
	$(BIN)/python -m pip install -q -e '.[dev]'

# Cards inline Vega builds, taken from npm at build time with their licences
# (not kept in git). Without npm the build goes on; charts then say what is missing.
card-assets:
	@test -f src/headwater/cards/assets/vega.min.js || $(MAKE) cards-assets || \
		echo "warning: could not fetch the Vega builds from npm; cards will show charts as missing"

example: venv
	cd examples && ../$(BIN)/python hello.py run

# Headless Chromium for the card and UI browser tests (Debian's package; the tests skip without it).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium) || true

# HEADWATER_COMPAT_REQUIRED: the differential suite (tests/compat) fails, not skips, when it cannot
# install Metaflow into its scratch venv (~/.cache/headwater/compat-metaflow-<version>).
test: dev browser
	HEADWATER_COMPAT_REQUIRED=1 $(BIN)/python -m pytest -q

bench: dev
	$(BIN)/python benchmarks/run.py

# Refresh the Vega builds cards inline (see src/headwater/cards/assets/NOTICE.md).
CARD_ASSETS := src/headwater/cards/assets
cards-assets:
	rm -rf .cards-assets && mkdir -p .cards-assets
	cd .cards-assets && for pv in vega:6.4.0 vega-lite:6.5.0 vega-embed:7.3.0; do p=$${pv%%:*}; v=$${pv#*:}; \
		npm pack -q $$p@$$v >/dev/null && mkdir $$p && tar xzf $$p-$$v.tgz -C $$p || exit 1; done
	cp .cards-assets/vega/package/build/vega.min.js .cards-assets/vega-lite/package/build/vega-lite.min.js \
		.cards-assets/vega-embed/package/build/vega-embed.min.js $(CARD_ASSETS)/
	for p in vega vega-lite vega-embed; do cp .cards-assets/$$p/package/LICENSE $(CARD_ASSETS)/LICENSE.$$p; done
	rm -rf .cards-assets

clean:
	rm -rf $(VENV) .headwater examples/.headwater
