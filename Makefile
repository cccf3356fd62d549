# s2s: the two commands a new user needs.
#   make demo   install into .venv, train the quick-start model on the shipped sample,
#               predict, evaluate, and say where every output went
#   make test   install into .venv, check the style (ruff) and run the test suite
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
S2S    := $(VENV)/bin/s2s
RUN    := runs/quickstart

.PHONY: demo test lint install clean

install: $(VENV)/.installed

# A PyTorch already importable (a CUDA build, say) is reused; otherwise torch==2.13.0 is installed.
$(VENV)/.installed: setup.py
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	@$(PY) -m pip uninstall -q -y s2s 2>/dev/null || true  # the distribution's name before 0.2.0 (now s2s-summarizer)
	$(PY) -m pip install -q -e ".[dev,serve,plot,vectors,subwords]"
	@touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest

demo: install
	$(S2S) train configs/quickstart.yaml train.overwrite=true
	$(S2S) predict --checkpoint $(RUN)/best.pt --input data/automaster_sample_dev.csv --output $(RUN)/dev_predictions.csv
	$(S2S) predict --baseline lead --input data/automaster_sample_dev.csv --output $(RUN)/dev_lead.csv
	$(S2S) evaluate --predictions $(RUN)/dev_predictions.csv --references data/automaster_sample_dev.csv
	$(S2S) evaluate --predictions $(RUN)/dev_lead.csv --references data/automaster_sample_dev.csv
	$(S2S) predict --checkpoint $(RUN)/best.pt --input data/automaster_sample_test.csv --output $(RUN)/test_predictions.csv
	@echo
	@echo "Demo done. Outputs:"
	@echo "  model          $(RUN)/best.pt (config: $(RUN)/config.yaml)"
	@echo "  training log   $(RUN)/train.log, $(RUN)/metrics.jsonl"
	@echo "  TensorBoard    $(VENV)/bin/tensorboard --logdir $(RUN)/tensorboard"
	@echo "  dev summaries  $(RUN)/dev_predictions.csv (lead baseline: $(RUN)/dev_lead.csv)"
	@echo "  test summaries $(RUN)/test_predictions.csv (QID,Prediction)"

clean:
	rm -rf $(VENV) runs
