"""The typed records every layer returns (pydantic models), one module per noun.

``runs`` (runs, metrics, datasets, artifacts, experiments), ``registry`` (models, versions,
aliases, the audit trail), ``alerts`` (rules and events) and ``pipelines`` (pipelines and
steps); ``display`` holds the HTML pieces their notebook views (``_repr_html_``) draw with.
They import nothing of chachaml but the error tree and each other, so every layer above —
store, tools, client, server — can return them.
"""
