"""The library inside training code: the client, its run, registry, alerts and pipelines.

``chachaml`` re-exports the public names; the modules here are the client's internals.
"""
