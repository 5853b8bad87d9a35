"""Sweeps end to end on a tiny random model: study in SQLite, resume, pruning, user errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from mangaassist.errors import UserError
from mangaassist.sweeps import Objective, run_sweep
from mangaassist.sweeps.argv import route, sweep_keys
from mangaassist.sweeps.best import experiment_yaml
from mangaassist.sweeps.space import parse_space, suggest
from tests.conftest import CONF, TINY, compose_cfg

ROOT = Path(__file__).resolve().parents[2]


def base_overrides(toy: Path, *extra: str) -> list[str]:
    """The tiny training every trial runs (one thread: the machine is shared)."""
    return [*TINY, "data=files", f"data.train={toy}", "threads=1", *extra]


def sweep_cfg(out_dir: Path, train: list[str], *extra: str):
    """``conf/sweep.yaml`` as ``sweep.py`` composes it, writing into ``out_dir``."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(
            "sweep", overrides=[f"out_dir={out_dir}", f"train={json.dumps(train)}", *extra]
        )


def load(out_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="gamma_lr_decay", storage=f"sqlite:///{out_dir}/study.db")


@pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval``")  # the simulated crash
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")
def test_sweep_stores_summarises_and_resumes(tmp_path, toy_file, capsys):
    out = tmp_path / "sw"
    train = base_overrides(toy_file)
    run_sweep(sweep_cfg(out, train, "n_trials=2"), CONF)

    study = load(out)
    first = study.trials  # copies: the study itself reads the live database
    assert [t.state for t in first] == [TrialState.COMPLETE] * 2
    log = capsys.readouterr().out
    assert "[SWEEP] new study=gamma_lr_decay" in log
    assert "[SWEEP] trial=1 params={" in log and "state=COMPLETE finished=2/2" in log
    assert "[SWEEP] best trial=" in log
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["number"] for r in rows] == ["0", "1"] and "lr" in rows[0]
    assert (out / "trials.md").read_text().startswith("# Study gamma_lr_decay")
    assert (out / "plots" / "optimization_history.png").stat().st_size > 0
    assert set(json.loads((out / "importances.json").read_text())) == set(study.trials[0].params)
    run0 = Path(study.trials[0].user_attrs["run_dir"])
    assert run0 == out / "trials" / "0" and (run0 / "metrics.json").exists()
    assert OmegaConf.load(run0 / "config.yaml").run_name == "gamma_lr_decay-t0"
    # Trials never score the test split: it is for the final run only.
    assert not [k for k in json.loads((run0 / "metrics.json").read_text()) if k.startswith("test")]

    # The best trial's experiment file composes back into its training config.
    best = study.best_trial
    cfg = compose_cfg(
        [f"hydra.searchpath=[file://{out}]", "experiment=gamma_lr_decay_best"], tmp_path / "best"
    )
    assert cfg.optim.lr == pytest.approx(best.params["lr"])
    assert cfg.loss.criterion.gamma == pytest.approx(best.params["gamma"])
    assert cfg.model.init == "tiny" and cfg.data.train == str(toy_file) and cfg.threads == 1
    OmegaConf.to_container(cfg, resolve=True)
    assert not (CONF / "experiment" / "gamma_lr_decay_best.yaml").exists()  # no flag, no write

    # A process killed mid-trial left a RUNNING trial whose heartbeat stopped.
    storage = RDBStorage(f"sqlite:///{out}/study.db", heartbeat_interval=1, grace_period=1)
    killed = optuna.load_study(study_name="gamma_lr_decay", storage=storage).ask()
    suggest(killed, parse_space(sweep_cfg(out, train).sweep.params))
    storage.record_heartbeat(killed._trial_id)
    time.sleep(2.2)  # past the grace period (SQLite's clock has 1 s steps)

    heartbeat = ["heartbeat_interval=1", "grace_period=1"]
    run_sweep(sweep_cfg(out, train, "n_trials=3", *heartbeat), CONF)
    assert "[SWEEP] resumed study=gamma_lr_decay" in capsys.readouterr().out
    after = load(out)
    states = [t.state for t in after.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.FAIL, TrialState.COMPLETE]
    for old, new in zip(first, after.trials[:2], strict=True):  # untouched
        assert (old.params, old.value, old.datetime_complete) == (
            new.params,
            new.value,
            new.datetime_complete,
        )
    retry = after.trials[3]
    assert retry.system_attrs["failed_trial"] == killed.number
    assert retry.params == after.trials[2].params

    # Enough finished trials: a third run trains nothing and says so.
    run_sweep(sweep_cfg(out, train, "n_trials=3"), CONF)
    assert "finished=3 remaining=0" in capsys.readouterr().out
    assert len(load(out).trials) == 4

    # Other base overrides under the same name (a smoke sweep): refused, the study untouched.
    assert load(out).user_attrs["base_overrides"] == train
    other = base_overrides(toy_file, "seed=1")
    with pytest.raises(UserError) as err:
        run_sweep(sweep_cfg(out, other, "n_trials=5"), CONF)
    assert str(err.value).startswith(
        f"study gamma_lr_decay was run with the base overrides {train}, not {other}"
    )
    assert "study_name=gamma_lr_decay_2" in str(err.value)
    assert len(load(out).trials) == 4


def test_pruned_trial_stops_training(tmp_path, toy_file, capsys):
    space = parse_space(sweep_cfg(tmp_path, []).sweep.params)
    objective = Objective(
        conf_dir=CONF,
        sweep_dir=tmp_path / "sw",
        space=space,
        base=base_overrides(toy_file, "trainer.max_epochs=3"),
        metric="val/macro_f1",
        study_name="prune",
    )
    # Every macro F1 is below 2: the first report prunes.
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(2.0))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    assert trial.user_attrs["metrics"]["epochs_trained"] == 1  # of 3
    assert "[SWEEP] trial=0 pruned after epoch=1 val/macro_f1=" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["trainer.max_epoch=2"], "does not compose"),
        (["optim.lr=1e-3"], "sets a swept key"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 is not allowed: use a whole number"),
    ],
)
def test_bad_override_stops_before_any_trial(tmp_path, toy_file, extra, message):
    out = tmp_path / "sw"
    with pytest.raises(UserError, match=message):
        run_sweep(sweep_cfg(out, base_overrides(toy_file, *extra), "n_trials=2"), CONF)
    assert not (out / "study.db").exists()


@pytest.mark.parametrize("metric", ["test/macro_f1", "test_lightning/macro_f1"])
def test_a_test_split_metric_is_refused(tmp_path, toy_file, metric):
    out = tmp_path / "sw"
    cfg = sweep_cfg(out, base_overrides(toy_file), "n_trials=1", f"metric={metric}")
    with pytest.raises(UserError, match="never on the test split"):
        run_sweep(cfg, CONF)
    assert not (out / "trials").exists()


def test_user_error_in_a_trial_stops_the_sweep(tmp_path):
    """Through sweep.py: one line on stderr, exit 2, the trial recorded as FAIL."""
    out = tmp_path / "sw"
    train = [*TINY, "data=files", f"data.train={tmp_path / 'missing.jsonl'}", "threads=1"]
    proc = subprocess.run(
        [sys.executable, "sweep.py", "n_trials=3", f"out_dir={out}", f"train={json.dumps(train)}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.jsonl" in errors[0]
    assert "Traceback" not in proc.stderr
    assert [t.state for t in load(out).trials] == [TrialState.FAIL]
    assert (out / ".hydra" / "config.yaml").exists()  # hydra.run.dir is the sweep folder


def test_space_errors_name_the_entry():
    with pytest.raises(UserError, match=r"sweep\.params\.lr: needs a 'key'"):
        parse_space({"lr": {"low": 1, "high": 2}})
    with pytest.raises(UserError, match="needs 'low' <= 'high'"):
        parse_space({"lr": {"key": "optim.lr", "low": 2, "high": 1}})
    with pytest.raises(UserError, match="log range needs low > 0"):
        parse_space({"g": {"key": "loss.criterion.gamma", "low": 0, "high": 1, "log": True}})
    with pytest.raises(UserError, match="unknown field"):
        parse_space({"g": {"key": "loss.criterion.gamma", "low": 0, "high": 1, "lo": 0}})
    space = parse_space({"loss": {"key": "loss", "choices": ["ce", "focal"]}})
    assert space["loss"]["type"] == "categorical"


def test_experiment_yaml_maps_groups_keys_and_experiments():
    text = experiment_yaml(
        ["experiment=smoke", "data=files", "+extra.flag=true", "~tags", "optim.lr=1e-05"],
        groups={"data", "experiment", "loss"},
        header=["hello"],
    )
    assert text.startswith("# @package _global_\n# hello\n# not carried over: ~tags\n")
    doc = OmegaConf.create(text)
    assert list(doc.defaults) == ["/experiment/smoke", {"override /data": "files"}]
    assert doc.optim.lr == 1e-05 and doc.extra.flag is True


def test_sweep_py_takes_train_py_words(tmp_path):
    """``sweep.py experiment=smoke`` is ``sweep.py 'train=["experiment=smoke"]'``."""
    proc = subprocess.run(
        [
            sys.executable,
            "sweep.py",
            "experiment=smoke",
            "n_trials=2",
            'train=["trainer.max_epochs=1"]',
            "loss=ce",
            f"out_dir={tmp_path}",
            "--cfg",
            "job",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = OmegaConf.create(proc.stdout)
    assert cfg.n_trials == 2
    assert list(cfg.train) == ["experiment=smoke", "trainer.max_epochs=1", "loss=ce"]


def test_route_keeps_sweep_keys_and_hydra_flags():
    keys = sweep_keys(CONF)
    args = ["-m", "seed=3", "sweep=banking77_lr", "hydra.run.dir=x", "+foo=1", "--cfg", "job"]
    assert route(args, keys) == [
        "-m",
        "--cfg",
        "job",
        "seed=3",  # the sampler's seed: a sweep key
        "sweep=banking77_lr",
        "hydra.run.dir=x",
        'train=["+foo=1"]',
    ]
    assert route(["n_trials=2"], keys) == ["n_trials=2"]  # nothing to add
