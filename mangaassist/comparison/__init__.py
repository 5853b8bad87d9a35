"""Comparison stage: runs side by side and the reproduced tables, from run directories only.

- :func:`~mangaassist.comparison.build.write_table`: ``compare`` (side by side, curves,
  bars), ``ablation`` (by loss, mean ± std over seeds, the published table and the
  rare-class target), ``models`` (quality, served latency, memory, monthly cost and the
  ``[DECISION]``), ``benchmarks`` (BANKING77 / CLINC150 beside the published figures).
- :class:`~mangaassist.comparison.callback.WriteTable`: the same at the end of a Hydra multirun.

Settings: ``conf/comparison/default.yaml``; published figures: ``conf/comparison/published.yaml``.
Command: ``mangaassist compare [ablation|models|benchmarks] RUNS... --out DIR``.
"""
