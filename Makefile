# The two commands of a fresh machine: `make demo` and `make test`.
# Both create and use the virtualenv .venv/ at the repo root.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-deps clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch comes from PyPI, whose Linux wheels carry the CUDA libraries (about 4 GB installed
	# with the nvidia-* packages; PyPI serves no CPU-only build). The exact version keeps
	# every machine on the one tested. It runs on CPU all the same.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,spark]'
	touch $@

system-deps:
	bash scripts/system-deps.sh

demo: $(STAMP)
	$(VENV)/bin/fhir-assist demo

test: $(STAMP) system-deps
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
