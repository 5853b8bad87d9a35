"""Training stage: ``train(cfg)``, observability callbacks, the run directory."""

from mangaassist.training.run_dir import LoadedRun, load_run
from mangaassist.training.train import train

__all__ = ["LoadedRun", "load_run", "train"]
