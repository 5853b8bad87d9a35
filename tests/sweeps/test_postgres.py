"""Two ``sweep.py`` workers share one study in a real PostgreSQL server (README: many machines).

The server is started for the test (``tests/sweeps/postgres.py``: loopback, a free port,
stopped by pid); set ``MANGAASSIST_TEST_POSTGRES_URL`` to use one of your own. Each worker has
its own ``out_dir``, as two machines would. One worker is killed (SIGKILL) in the middle of a
trial: its trial must be failed by the survivor's heartbeat check and its parameters tried
again, and the study must still reach ``n_trials`` finished trials, each number once.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.sweeps.postgres import postgres_url
from tests.sweeps.test_sweep import base_overrides

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 8
GRACE_S = 3  # s without a heartbeat before a RUNNING trial is dead
DEADLINE_S = 300  # the whole test, both workers; a bound, not a speed check


def start_worker(url: str, out_dir: Path, seed: int, toy: Path, log: Path) -> subprocess.Popen:
    """``python sweep.py storage=URL ...`` in its own process group (killed as a group)."""
    cmd = [
        sys.executable,
        "sweep.py",
        f"storage={url}",
        f"n_trials={N_TRIALS}",
        f"out_dir={out_dir}",
        f"seed={seed}",  # one per machine, as the README says
        "heartbeat_interval=1",
        f"grace_period={GRACE_S}",  # heartbeats every 1 s: a busy machine may delay one
        f"train={json.dumps(base_overrides(toy))}",
    ]
    with log.open("w") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@functools.cache
def storage(url: str) -> optuna.storages.RDBStorage:
    """One storage (one connection pool) for all the test's polling."""
    return optuna.storages.RDBStorage(url)


def trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="gamma_lr_decay", storage=storage(url)).get_trials()
    except KeyError:  # the first worker has not created the study yet
        return []


def owner(trial: optuna.trial.FrozenTrial, out_dirs: dict[str, Path]) -> str | None:
    run_dir = trial.user_attrs.get("run_dir", "")
    return next((name for name, d in out_dirs.items() if run_dir.startswith(str(d))), None)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_two_workers_share_a_study_and_recover_a_killed_trial(tmp_path, toy_file):
    with postgres_url() as url:
        out_dirs = {"a": tmp_path / "machine_a", "b": tmp_path / "machine_b"}
        logs = {name: tmp_path / f"{name}.log" for name in out_dirs}
        workers: dict[str, subprocess.Popen] = {}
        try:
            # b, the worker to be killed, starts first and creates the study; a joins once b is
            # in its first trial, as a second machine. Started the other way round, a slow start
            # of b (a loaded CI machine) let a finish 6 of the 8 trials before b's second began,
            # too late for a to start another trial and so fail b's dead one.
            deadline = time.monotonic() + DEADLINE_S
            workers["b"] = start_worker(url, out_dirs["b"], 1, toy_file, logs["b"])
            while not any(t.state == TrialState.RUNNING for t in trials(url)):
                assert workers["b"].poll() is None, logs["b"].read_text()[-3000:]
                assert time.monotonic() < deadline, "worker b never started a trial"
                time.sleep(0.2)
            workers["a"] = start_worker(url, out_dirs["a"], 0, toy_file, logs["a"])

            # Kill b in the middle of its second trial (after it has finished one).
            killed_number = None
            while killed_number is None and time.monotonic() < deadline:
                mine = [t for t in trials(url) if owner(t, out_dirs) == "b"]
                done = [t for t in mine if t.state == TrialState.COMPLETE]
                running = [t for t in mine if t.state == TrialState.RUNNING]
                if done and running:
                    os.killpg(workers["b"].pid, signal.SIGKILL)
                    workers["b"].wait(timeout=10)
                    killed_number = running[0].number
                    # The survivor fails a dead trial only when it starts one of its own past the
                    # grace period: hold it that long so the check cannot race the study's end.
                    os.killpg(workers["a"].pid, signal.SIGSTOP)
                    time.sleep(GRACE_S + 1.5)
                    os.killpg(workers["a"].pid, signal.SIGCONT)
                    finished = sum(t.state == TrialState.COMPLETE for t in trials(url))
                    assert finished <= N_TRIALS - 2, f"b was killed too late ({finished} finished)"
                assert workers["b"].poll() is None or killed_number is not None, (
                    f"worker b ended before it could be killed mid-trial:\n{logs['b'].read_text()}"
                )
                time.sleep(0.2)
            assert killed_number is not None, "worker b never ran a second trial"

            workers["a"].wait(timeout=max(1.0, deadline - time.monotonic()))
            assert workers["a"].returncode == 0, logs["a"].read_text()[-3000:]
        finally:
            for proc in workers.values():
                stop(proc)

        final = trials(url)
        numbers = [t.number for t in final]
        assert len(numbers) == len(set(numbers)), f"a trial number was handed out twice: {numbers}"
        by_state = {s: [t for t in final if t.state == s] for s in TrialState}
        complete = by_state[TrialState.COMPLETE]
        # Each worker stops once N_TRIALS are finished; two may each start the last one.
        assert N_TRIALS <= len(complete) <= N_TRIALS + 1
        assert not by_state[TrialState.RUNNING] and not by_state[TrialState.WAITING]
        assert {owner(t, out_dirs) for t in complete} == {"a", "b"}  # both did work
        for t in complete:  # none lost: every finished trial has its run folder and metrics
            assert (Path(t.user_attrs["run_dir"]) / "metrics.json").exists(), t.number

        # The killed trial: failed by a's heartbeat check, its parameters retried and finished.
        killed = next(t for t in final if t.number == killed_number)
        assert killed.state == TrialState.FAIL
        retries = [t for t in final if t.system_attrs.get("failed_trial") == killed_number]
        assert len(retries) == 1, [t.system_attrs for t in final]
        assert retries[0].state == TrialState.COMPLETE and retries[0].params == killed.params
        assert owner(retries[0], out_dirs) == "a"
        assert len(final) == len(complete) + 1  # nothing but the killed trial failed
