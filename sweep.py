"""Hyperparameter sweep with Optuna: ``python sweep.py [sweep=<space>] [n_trials=N] [...]``.

Examples:
    python sweep.py sweep=gamma_lr_decay n_trials=20     # study in sweeps/gamma_lr_decay/
    python sweep.py experiment=smoke study_name=smoke n_trials=3   # train.py's overrides too
    python sweep.py 'train=["data=mangaassist","trainer.max_epochs=2"]'  # the same, explicit
    python sweep.py storage=postgresql://user@host/optuna  # one study shared by many machines
    python sweep.py n_trials=30                          # rerun: resumes, adds the missing trials
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mangaassist.errors import UserError

CONF = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="sweep")
def main(cfg: DictConfig) -> None:
    """Run or resume the study, then write its summary next to it."""
    from mangaassist.sweeps import run_sweep
    from mangaassist.training.lines import tagged_lines_to_log

    try:
        with tagged_lines_to_log():  # [SWEEP] and every trial's lines also in sweep.log
            run_sweep(cfg, conf_dir=CONF)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(
            "[SWEEP] interrupted: the running trial is marked FAIL, finished ones are stored; "
            "run the same command to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


if __name__ == "__main__":
    from mangaassist.sweeps.argv import route, sweep_keys

    # train.py's words work here too: experiment=smoke is 'train=["experiment=smoke"]'.
    sys.argv[1:] = route(sys.argv[1:], sweep_keys(CONF))
    main()
