"""chachaml's benchmarks: ``python -m bench`` runs them all and judges every figure.

One module per benchmark (:mod:`bench.tracking`, :mod:`bench.postgres`, :mod:`bench.mcp_stdio`,
:mod:`bench.mcp_http`, :mod:`bench.ui`, :mod:`bench.http_ingest`), each runnable alone as
``python -m bench.<module>``; one seeder (:mod:`bench.seed`); the targets in
:mod:`bench.targets`.
"""
