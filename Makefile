# The README names two commands: `make reproduce` and `make test`.
PY ?= python3
PROFILE ?= quick

.PHONY: setup setup-dev reproduce test test-fast lab bench clean

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

## Run every notebook with papermill on $(PROFILE) (CPU is fine for quick); summary in runs/$(PROFILE)/
reproduce: setup
	$(PY) -m lowlight.reproduce --profile $(PROFILE)

## Unit tests, the notebooks under nbval (smoke profile), the runner end to end, the browser test
test: setup-dev
	LOWLIGHT_PROFILE=smoke $(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

## Unit tests only (no notebooks, no browser)
test-fast:
	LOWLIGHT_PROFILE=smoke $(PY) -m pytest tests -m "not browser and not slow"

lab:
	$(PY) -m jupyter lab notebooks/

bench:
	$(PY) -m benchmarks

clean:
	rm -rf runs/smoke
