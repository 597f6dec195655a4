"""MLflow's tracking REST API, so an unmodified ``mlflow`` client logs into chachaml.

One module per noun: ``routes`` (both prefixes, the not-found catch-all), ``experiments``,
``runs``, ``metrics``, ``search`` (runs/search), ``filters`` (MLflow's filter grammar),
``entities`` (chachaml records as MLflow JSON), ``ids`` (how ids, times and statuses map) and
``wire`` (request parsing, page tokens). Every handler calls chachaml's operations.
"""
