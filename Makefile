# Airflow on this machine (embedded mode: SQLite, LocalExecutor, 127.0.0.1 only) with the demo
# sources and the demo web: see README.md, "Operating with Airflow". DATA picks the data home
# (default: ATTEST_HOME, else ./data); ARGS passes options on to start, e.g.
# `make airflow ARGS="--port 8791 --random-demo-ports"`.
PYTHON ?= .venv/bin/python
DATA_ARG = $(if $(DATA),--data $(DATA))

.PHONY: airflow airflow-stop airflow-status

airflow:
	$(PYTHON) scripts/airflow_local.py start $(DATA_ARG) $(ARGS)

airflow-stop:
	$(PYTHON) scripts/airflow_local.py stop $(DATA_ARG)

airflow-status:
	$(PYTHON) scripts/airflow_local.py status $(DATA_ARG)
