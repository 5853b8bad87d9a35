"""One trial: compose ``conf/train.yaml`` with the sampled values, train, report, prune."""

from __future__ import annotations

import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from mangaassist.errors import UserError
from mangaassist.sweeps.space import suggest, to_overrides
from mangaassist.training import train
from mangaassist.training.config_schema import validate_train_config


class TrialFailed(Exception):
    """A trial raised something other than a ``UserError``: Optuna records FAIL, the sweep goes on.

    The original exception is the ``__cause__``, so Optuna's log shows its traceback.
    """


def compose_train(
    conf_dir: Path,
    overrides: Sequence[str],
    output_dir: Path | None = None,
    *,
    with_hydra: bool = False,
) -> DictConfig:
    """Compose ``conf/train.yaml`` the way ``train.py`` would, outside (or inside) a Hydra app.

    Args:
        conf_dir: the folder holding ``train.yaml``.
        overrides: ``key=value`` / ``group=option`` strings, later ones win.
        output_dir: the run directory; it replaces ``${hydra:runtime.output_dir}``, which only
            a Hydra app can resolve.
        with_hydra: keep the ``hydra`` node (its ``runtime.choices`` tell groups from keys).

    Raises:
        UserError: an override names a missing key, group or option.
    """
    # Inside sweep.py's @hydra.main the global Hydra is taken: set it aside, then put it back.
    outer = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(Path(conf_dir).resolve()), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=with_hydra)
    except (HydraException, OmegaConfBaseException) as err:
        message = " ".join(str(err).split())  # one line, like every UserError
        raise UserError(f"the trial config does not compose: {message}") from None
    finally:
        GlobalHydra.instance().hydra = outer
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


class PruningCallback(L.Callback):
    """Report each validation's ``monitor`` to an Optuna trial; stop training if it is pruned.

    Stopping sets ``trainer.should_stop`` instead of raising, so Lightning finishes the epoch,
    closes its loggers and ``train`` returns normally; the objective then raises
    ``optuna.TrialPruned``. Steps are validation rounds (0 = the first), i.e. epochs with the
    default once-per-epoch validation, which is what the pruner's ``n_warmup_steps`` counts.

    Args:
        trial: the running trial.
        monitor: a per-epoch metric in ``trainer.callback_metrics`` (e.g. ``val/macro_f1``).
    """

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self.pruned_at: int | None = None  # the validation round that triggered pruning
        self._round = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # on_validation_end, not on_validation_epoch_end: callbacks run before the module's
        # epoch-end hook, which is where the epoch metrics are computed and logged.
        if trainer.sanity_checking or self.pruned_at is not None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        step, self._round = self._round, self._round + 1
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.pruned_at = step
            trainer.should_stop = True
            print(
                f"[SWEEP] trial={self.trial.number} pruned after epoch={trainer.current_epoch + 1} "
                f"{self.monitor}={float(value):.4f}",
                flush=True,
            )


def _finish_wandb(ok: bool) -> None:
    # Lightning's WandbLogger reuses a W&B run left open, which would pour every trial into
    # the first trial's run: close it after each trial.
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=0 if ok else 1)


class Objective:
    """The Optuna objective: one ``train(cfg)`` per trial, in ``<sweep_dir>/trials/<number>/``.

    Args:
        conf_dir: the folder holding ``train.yaml``.
        sweep_dir: where the trial run directories go.
        space: the parsed search space (``space.parse_space``).
        base: overrides every trial gets before the sampled ones (the sweep's ``train`` list).
        metric: the key of ``train``'s result to optimise; ``best/`` stripped, the per-epoch
            metric pruned on.
        study_name: the W&B group; runs are named ``<study_name>-t<number>``.
    """

    def __init__(
        self,
        conf_dir: Path,
        sweep_dir: Path,
        space: Mapping[str, Mapping[str, Any]],
        base: Sequence[str],
        metric: str,
        study_name: str,
    ) -> None:
        if metric.startswith(("test/", "test_lightning/")):
            raise UserError(
                f"metric={metric}: a sweep tunes on validation, never on the test split; "
                "use a val/ metric (e.g. val/macro_f1) and score the test split once at the end"
            )
        self.conf_dir = Path(conf_dir)
        self.sweep_dir = Path(sweep_dir)
        self.space = space
        self.base = list(base)
        self.metric = metric
        self.study_name = study_name

    def trial_overrides(self, values: Mapping[str, Any]) -> list[str]:
        """The overrides that define a trial: base first, then the sampled values."""
        return [*self.base, *to_overrides(self.space, values)]

    def check(self, values: Mapping[str, Any]) -> None:
        """Compose and check one trial's config without training: a bad override stops early."""
        swept = {s["key"] for s in self.space.values()}
        for override in self.base:
            key = override.split("=", 1)[0].lstrip("+~")
            if key in swept:
                raise UserError(
                    f"train override {override!r} sets a swept key; drop it from train=[...] "
                    "or from sweep.params"
                )
        cfg = compose_train(self.conf_dir, self.trial_overrides(values), self.sweep_dir / "check")
        validate_train_config(cfg)  # trainer.max_epochs=-1 stops here, not in trial 0

    def __call__(self, trial: optuna.Trial) -> float:
        """Train one trial and return its ``metric``.

        Raises:
            optuna.TrialPruned: the pruner stopped it (Optuna records PRUNED).
            TrialFailed: training raised (Optuna records FAIL; the sweep goes on).
            UserError: bad config or data (FAIL, and the sweep stops).
            KeyboardInterrupt: Ctrl+C (FAIL, and the sweep stops; rerun to resume).
        """
        overrides = self.trial_overrides(suggest(trial, self.space))
        run_dir = self.sweep_dir / "trials" / str(trial.number)
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("run_dir", str(run_dir))
        if run_dir.exists():  # left by an earlier study of the same name whose DB was deleted
            shutil.rmtree(run_dir)
        bookkeeping = [
            f"group={self.study_name}",
            f"run_name={self.study_name}-t{trial.number}",
            "test_after_fit=false",  # trials see train + val only: the test split is for the end
        ]
        cfg = compose_train(self.conf_dir, [*overrides, *bookkeeping], run_dir)
        pruning = PruningCallback(trial, self.metric.removeprefix("best/"))
        ok = False
        try:
            metrics = train(cfg, callbacks=[pruning])
            ok = True
        except UserError:
            raise
        except SystemExit as err:  # Lightning turns Ctrl+C during fit into sys.exit(1)
            raise KeyboardInterrupt from err
        except Exception as err:
            raise TrialFailed(f"{type(err).__name__}: {err}") from err
        finally:
            _finish_wandb(ok)
        trial.set_user_attr(
            "metrics",
            {k: v for k, v in metrics.items() if math.isfinite(v)},  # JSON has no NaN
        )
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"after validation round {pruning.pruned_at + 1}")
        if self.metric not in metrics:
            known = sorted(metrics)
            raise UserError(f"metric={self.metric} is not a result of train(); use one of {known}")
        return float(metrics[self.metric])
