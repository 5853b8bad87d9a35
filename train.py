"""Train an intent classifier: ``python train.py [group=option ...] [key=value ...]``.

Examples:
    python train.py                                    # MiniLM, default data, focal_weighted
    python train.py loss=focal_weighted model=distilbert
    python train.py experiment=smoke                   # tiny random model, < 1 minute
    python train.py -m loss=ce,focal_weighted seed=0,1,2
"""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mangaassist.errors import UserError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run one training (and its evaluation); return the metric a sweep optimises."""
    from mangaassist.training import train
    from mangaassist.training.lines import LOGGER, tagged_lines_to_log

    try:
        with tagged_lines_to_log():  # [DATA_AUDIT], [TRAIN], [VAL], [TEST], [EVAL] in train.log
            metrics = train(cfg)
            if cfg.get("evaluate"):
                from mangaassist.evaluation import post_train

                metrics |= post_train(cfg.paths.output_dir, cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        logging.getLogger(LOGGER).error("error: %s", err)  # train.log says why it stopped
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra marks the job failed and runs the rest; SystemExit would end the sweep
        raise SystemExit(2) from None
    return metrics.get(cfg.get("optimize_metric", "best/val/macro_f1"))


if __name__ == "__main__":
    main()
