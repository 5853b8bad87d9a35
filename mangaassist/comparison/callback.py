"""A Hydra callback that writes a comparison table when a multirun ends.

Register it in an experiment config (``# @package _global_``)::

    hydra:
      callbacks:
        ablation_table:
          _target_: mangaassist.comparison.callback.WriteTable
          table: ablation                       # compare | ablation | models | benchmarks

It reads the runs under ``hydra.sweep.dir`` and writes the table into that folder
(``<sweep>/<table>/``, or ``<sweep>/<out>/``), never elsewhere: a partial or failed rerun must
not replace a table published in ``experiments/``. Publishing is an explicit step once the
sweep is complete: ``mangaassist compare <table> <sweep> --out experiments/<name>``.

A job that raised is recorded in its folder
(``failed.json``: overrides and error) so the table can say why it has no result. Hydra
skips ``on_multirun_end`` when a job failed (the sweeper re-raises its error after the
batch), so the table is also written at interpreter exit if the multirun did not end
normally.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mangaassist.atomic import write_json
from mangaassist.comparison.runs import FAILED_FILE
from mangaassist.errors import UserError


class WriteTable(Callback):
    """Write one table (``mangaassist compare <table>``) over the sweep's runs at the end."""

    def __init__(
        self,
        table: str = "compare",
        out: str | None = None,
        by: str | None = None,
        settings: str | None = None,
        published: str | None = None,
    ) -> None:
        """Args: see :func:`mangaassist.comparison.build.write_table`; ``out`` is a folder
        *inside* the sweep folder (None = ``<table>/``).

        Raises:
            UserError: ``out`` is absolute or climbs out of the sweep folder (``..``).
        """
        if out is not None and (Path(out).is_absolute() or ".." in Path(out).parts):
            raise UserError(
                f"WriteTable out={out}: the table is written inside the sweep folder only; "
                f"give a subfolder name, and publish afterwards with "
                f"`mangaassist compare {table} <sweep folder> --out experiments/<name>`"
            )
        self.table, self.out, self.by = table, out, by
        self.settings, self.published = settings, published
        self.sweep_dir: Path | None = None
        self.written = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember the sweep folder; make sure the table is written even if a job fails."""
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.written = False
        atexit.register(self._at_exit)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Leave ``failed.json`` in the folder of a job that raised."""
        if job_return.status != JobStatus.FAILED:
            return
        error = getattr(job_return, "_return_value", None)  # the exception the job raised
        folder = Path(str(config.hydra.runtime.output_dir))
        folder.mkdir(parents=True, exist_ok=True)
        info = {"overrides": list(job_return.overrides or []), "error": str(error)}
        write_json(folder / FAILED_FILE, info)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the table."""
        self._write()

    def _at_exit(self) -> None:
        if not self.written:
            print(
                f'[{self.table.upper()}] note="the multirun did not end normally; '
                'writing the table from the jobs that finished"',
                file=sys.stderr,
            )
            self._write()

    def _write(self) -> None:
        from mangaassist.comparison.build import write_table

        if self.sweep_dir is None or self.written:
            return
        self.written = True
        out = self.sweep_dir / (self.out or self.table)
        try:
            lines = write_table(
                self.table,
                [str(self.sweep_dir)],
                out,
                by=self.by,
                settings_path=self.settings,
                published_path=self.published,
            )
        except UserError as err:  # the runs are intact; only the table is missing
            print(f"[{self.table.upper()}] error: {err}", file=sys.stderr, flush=True)
            return
        print("\n".join(lines), flush=True)
        print(
            f'[{self.table.upper()}] path={out} note="in the sweep folder; publish it with: '
            f'mangaassist compare {self.table} {self.sweep_dir} --out experiments/<name>"',
            flush=True,
        )
