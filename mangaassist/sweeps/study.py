"""The study: RDB storage with heartbeats, the TPE sampler, the pruner, and resuming.

A study lives in a database (SQLite by default, any SQLAlchemy URL), so a second ``sweep.py``
with the same ``study_name`` and ``storage`` carries on where the first stopped, and several
machines pointed at one PostgreSQL database share the work.

A process killed mid-trial (SIGKILL, a lost machine) leaves its trial RUNNING. Each trial
writes a heartbeat every ``heartbeat_interval`` seconds; a RUNNING trial silent for
``grace_period`` seconds is marked FAIL when any worker next opens the study or starts a trial,
and its parameters are queued again (``retry_stale`` times). A RUNNING trial never blocks:
only COMPLETE and PRUNED trials count towards ``n_trials``. Ctrl+C marks the trial FAIL at once.

The study keeps the base overrides (``train=[...]``) it was started with; a resume with other
ones is refused, so a smoke sweep cannot pour its trials into the real study of the same name.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from mangaassist.errors import UserError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts towards n_trials
BASE_OVERRIDES = "base_overrides"  # study user attribute: the train=[...] every trial had


def safe_url(url: str) -> str:
    """The storage URL with any password masked, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable storage URL>"


def make_storage(
    url: str, heartbeat_interval: int, grace_period: int, retry_stale: int
) -> RDBStorage:
    """Open (and create if needed) the study database.

    Args:
        url: a SQLAlchemy URL; a SQLite file's folder is created.
        heartbeat_interval: seconds between a running trial's heartbeats.
        grace_period: seconds without a heartbeat after which a RUNNING trial is stale.
        retry_stale: how many times a stale trial's parameters are queued again (0: never).

    Raises:
        UserError: the URL is malformed, its driver is missing, or the database is unreachable.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental"
            retry = RetryHeartbeatStaleTrialCallback(max_retry=retry_stale) if retry_stale else None
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=retry,
            )
    except Exception as err:  # SQLAlchemy and DB drivers raise many types
        raise UserError(
            f"storage={safe_url(url)} cannot be opened ({type(err).__name__}: {err}); use a "
            "SQLAlchemy URL such as sqlite:///sweeps/study.db or postgresql://user@host/db"
        ) from None


def make_sampler(sampler_cfg: DictConfig | None, offset: int) -> optuna.samplers.BaseSampler:
    """Instantiate the sampler; its ``seed`` is shifted by the number of trials already stored.

    Without the shift a resumed TPE sampler would replay its random start-up draws and repeat
    the first trials' parameters.
    """
    if sampler_cfg is None:
        return optuna.samplers.TPESampler()
    kwargs: dict[str, Any] = {}
    if sampler_cfg.get("seed") is not None:
        kwargs["seed"] = int(sampler_cfg.seed) + offset
    return instantiate(sampler_cfg, **kwargs)


def count(study: optuna.Study, states: tuple[TrialState, ...] = FINISHED) -> int:
    """Trials of ``study`` in ``states`` (by default the finished ones)."""
    return len(study.get_trials(deepcopy=False, states=states))


def open_study(cfg: DictConfig) -> optuna.Study:
    """Create the study, or load it with all its trials; fail trials whose process died.

    Args:
        cfg: the composed ``conf/sweep.yaml``.

    Raises:
        UserError: bad storage, or an existing study optimised in the other direction.
    """
    storage = make_storage(
        str(cfg.storage), int(cfg.heartbeat_interval), int(cfg.grace_period), int(cfg.retry_stale)
    )
    pruner = instantiate(cfg.pruner) if cfg.get("pruner") else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=storage,
        study_name=str(cfg.study_name),
        direction=str(cfg.direction),
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction.name.lower() != str(cfg.direction).lower():
        raise UserError(
            f"study {cfg.study_name} was created to {study.direction.name.lower()} its metric, "
            f"not {cfg.direction}; pick another study_name"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    study.sampler = make_sampler(cfg.get("sampler"), offset=len(study.get_trials(deepcopy=False)))
    return study


def check_base_overrides(study: optuna.Study, base: list[str]) -> None:
    """Store ``base`` with a study that has none; refuse to resume one stored with others.

    Raises:
        UserError: the study's trials were trained with other base overrides; the message
            says how to name a new study.
    """
    stored = study.user_attrs.get(BASE_OVERRIDES)
    if stored is None:
        study.set_user_attr(BASE_OVERRIDES, list(base))
        return
    if list(stored) != list(base):
        name = study.study_name
        raise UserError(
            f"study {name} was run with the base overrides {stored}, not {list(base)}: its "
            "trials would not compare with these. Rerun with the same overrides to resume it, "
            f"or start a new study under another name: study_name={name}_2 (or any name; its "
            "folder becomes sweeps/<study_name>/)"
        )
