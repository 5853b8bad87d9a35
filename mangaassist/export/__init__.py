"""Export stage: the ONNX serving bundle of a trained run (``mangaassist export RUN_DIR``).

See :mod:`mangaassist.export.bundle` for the bundle's layout and guarantees.
"""
