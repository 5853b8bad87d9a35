"""data=mangaassist: generate, audit, clean, split with no leakage, every intent in every split."""

from mangaassist.data.schema import INTENTS
from mangaassist.training.train import build
from tests.conftest import compose_cfg


def test_mangaassist_data_builds_audited_clean_leak_free_splits(tmp_path, capsys):
    cfg = compose_cfg(
        [
            "experiment=smoke",
            "data=mangaassist",
            "data.source.n=2200",
            f"data.source.cache_dir={tmp_path / 'cache'}",
        ],
        tmp_path / "run",
    )
    dm, model, _ = build(cfg)
    out = capsys.readouterr().out
    assert "[DATA_AUDIT]" in out and "[DECISION] filter_synthetic=" in out and "[CLEAN]" in out
    assert (tmp_path / "run" / "audit" / "audit.json").exists()
    assert dm.labels == list(INTENTS) and model.head.out_features == 10
    report = dm.split_report
    assert report["conversation_leaks"] == 0 and report["duplicate_leaks"] == 0
    assert not report["missing"]  # every intent in train, val and test
    sizes = report["sizes"]
    assert abs(sizes["val"] / sum(sizes.values()) - 0.1) < 0.02
    # The injected low-quality synthetic rows are mostly gone after cleaning.
    assert sum(e.source == "synthetic" for e in dm.splits["train"]) < 0.1 * len(dm.splits["train"])


def test_same_seed_same_split_bytes_and_report_names_them(tmp_path, capsys):
    def splits(run: str) -> dict:
        cfg = compose_cfg(
            [
                "experiment=smoke",
                "data=mangaassist",
                "data.source.n=1500",
                f"data.source.cache_dir={tmp_path / run / 'cache'}",  # generated afresh each time
            ],
            tmp_path / run,
        )
        return build(cfg)[0].split_report

    first, again = splits("a"), splits("b")
    assert first["seed"] == 0 and len(first["input_sha256"]) == 64
    assert first["input_sha256"] == again["input_sha256"]
    assert first["split_sha256"] == again["split_sha256"]
    assert f"input_sha256={first['input_sha256'][:12]}" in capsys.readouterr().out
