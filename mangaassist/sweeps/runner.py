"""``run_sweep(cfg)``: open or resume the study, run the missing trials, write the summary."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from mangaassist.errors import UserError
from mangaassist.sweeps.artifacts import write_importances, write_plots, write_table
from mangaassist.sweeps.best import write_best_experiment
from mangaassist.sweeps.objective import Objective, TrialFailed
from mangaassist.sweeps.space import low_corner, parse_space
from mangaassist.sweeps.study import (
    FINISHED,
    check_base_overrides,
    count,
    open_study,
    safe_url,
)


def _check(cfg: DictConfig) -> None:
    if str(cfg.direction) not in ("maximize", "minimize"):
        raise UserError(f"direction={cfg.direction}; use maximize or minimize")
    if not isinstance(cfg.n_trials, int) or cfg.n_trials < 1:
        raise UserError(f"n_trials={cfg.n_trials}; use a whole number >= 1")
    if not OmegaConf.is_list(cfg.train):
        raise UserError("train must be a list of overrides, e.g. 'train=[\"data=mangaassist\"]'")


class _NoUserErrorTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; a UserError or Ctrl+C gets one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, UserError | KeyboardInterrupt)


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # [SWEEP] lines say what INFO would
    trial_log = logging.getLogger("optuna.study._optimize")  # where failed trials are logged
    if not any(isinstance(f, _NoUserErrorTraceback) for f in trial_log.filters):
        trial_log.addFilter(_NoUserErrorTraceback())


def _value(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


class _Reporter:
    """After each trial, one grep-able ``[SWEEP] trial=...`` line."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        rounded = {k: round(v, 6) if isinstance(v, float) else v for k, v in trial.params.items()}
        params = json.dumps(rounded)
        done = count(study)
        try:
            best = f"{_value(study.best_value)} (trial {study.best_trial.number})"
        except ValueError:  # no complete trial yet
            best = "-"
        print(
            f"[SWEEP] trial={trial.number} params={params} value={_value(trial.value)} "
            f"state={trial.state.name} finished={done}/{self.n_trials} best={best}",
            flush=True,
        )


def _summarise(study: optuna.Study, cfg: DictConfig, conf_dir: Path, out_dir: Path) -> None:
    csv_path, _ = write_table(study, out_dir)
    importances = write_importances(study, out_dir)
    if importances:
        print("[SWEEP] importances " + " ".join(f"{k}={v}" for k, v in importances.items()))
    write_plots(study, out_dir)
    try:
        best = study.best_trial
    except ValueError:
        print(f"[SWEEP] best trial=none (no complete trial) table={csv_path}", flush=True)
        return
    path = write_best_experiment(study, best, conf_dir, out_dir, str(cfg.metric))
    print(
        f"[SWEEP] best trial={best.number} value={best.value:.4f} config={path} "
        f"run_dir={best.user_attrs.get('run_dir')}",
        flush=True,
    )
    name = path.stem
    if cfg.get("write_experiment"):
        target = conf_dir / "experiment" / path.name
        shutil.copyfile(path, target)
        print(f"[SWEEP] wrote {target}: python train.py experiment={name}", flush=True)
    else:
        print(
            f"[SWEEP] train it: python train.py hydra.searchpath=[file://{out_dir}] "
            f"experiment={name}   (or rerun with write_experiment=true)",
            flush=True,
        )


def run_sweep(cfg: DictConfig, conf_dir: Path) -> optuna.Study:
    """Run (or resume) an Optuna study whose trials are ``mangaassist.training.train`` runs.

    Stops once ``n_trials`` trials are COMPLETE or PRUNED in the study, counting those of
    earlier runs and of other processes sharing the storage. This process tries at most the
    missing number; failed trials do not count, so rerunning fills the gap.

    Args:
        cfg: the composed ``conf/sweep.yaml``.
        conf_dir: the folder holding ``train.yaml`` (and ``experiment/`` for
            ``write_experiment=true``).

    Returns:
        The study, reloaded with every trial.

    Raises:
        UserError: a bad sweep config, a trial config that does not compose or holds a bad
            value, a resume with other base overrides than the study's, bad data.
        KeyboardInterrupt: Ctrl+C; the running trial is recorded as FAIL.
    """
    _check(cfg)
    _quiet_optuna()
    space = parse_space(cfg.sweep.params)
    out_dir = Path(str(cfg.out_dir)).resolve()
    objective = Objective(
        conf_dir=conf_dir,
        sweep_dir=out_dir,
        space=space,
        base=[str(o) for o in cfg.train],
        metric=str(cfg.metric),
        study_name=str(cfg.study_name),
    )
    objective.check(low_corner(space))  # before any trial is stored
    out_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(cfg)
    check_base_overrides(study, objective.base)
    n_trials = int(cfg.n_trials)
    finished, stored = count(study), len(study.get_trials(deepcopy=False))
    remaining = max(0, n_trials - finished)
    where = f"study={study.study_name} storage={safe_url(str(cfg.storage))}"
    if stored:
        failed = count(study, (TrialState.FAIL,))
        running = count(study, (TrialState.RUNNING,))
        print(
            f"[SWEEP] resumed {where} finished={finished} remaining={remaining} "
            f"failed={failed} running_elsewhere={running}",
            flush=True,
        )
    else:
        print(f"[SWEEP] new {where} n_trials={n_trials} dir={out_dir}", flush=True)
    if remaining:
        study.optimize(
            objective,
            n_trials=remaining,
            catch=(TrialFailed,),  # a UserError or Ctrl+C stops the sweep
            callbacks=[MaxTrialsCallback(n_trials, states=FINISHED), _Reporter(n_trials)],
            show_progress_bar=bool(cfg.get("progress_bar", False)),
        )
    _summarise(study, cfg, conf_dir, out_dir)
    return study
