"""Hyperparameter sweeps: Optuna studies whose trials are ``mangaassist.training.train`` runs.

``sweep.py`` calls ``run_sweep(cfg, conf_dir)``; search spaces live in ``conf/sweep/``.
Modules: ``space`` (search space -> overrides), ``objective`` (one trial, pruning callback),
``study`` (storage, sampler, pruner, resume), ``artifacts`` (table, importances, plots),
``best`` (the best trial as an experiment config), ``runner`` (the loop).
"""

from mangaassist.sweeps.objective import Objective, PruningCallback, compose_train
from mangaassist.sweeps.runner import run_sweep

__all__ = ["Objective", "PruningCallback", "compose_train", "run_sweep"]
