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


def test_the_audit_is_cached_by_corpus_sha256_and_settings(tmp_path, capsys, monkeypatch):
    from mangaassist.data import audit, sources

    real, calls = audit.audit_examples, []

    def counting(*args, **kwargs):
        calls.append(kwargs.get("cfg") or args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "audit_examples", counting)
    cache = tmp_path / "cache"

    def run(name: str, **kw):
        out = tmp_path / name
        src = sources.mangaassist(n=1000, cache_dir=str(cache), audit_out=str(out), **kw)
        return src, out, capsys.readouterr().out

    first, out1, log1 = run("a")
    again, out2, log2 = run("b")
    assert len(calls) == 1  # the second run reused the report
    assert "[DATA_AUDIT] cached=" not in log1 and "[DATA_AUDIT] cached=" in log2
    assert [e.to_dict() for e in again.train] == [e.to_dict() for e in first.train]
    for name in ("audit.json", "label_suspects.csv", "class_distribution.png"):
        assert (out2 / name).read_bytes() == (out1 / name).read_bytes(), name
    # the [DATA_AUDIT]/[DECISION] lines are printed as on the first run
    assert [x for x in log2.splitlines() if x.startswith("[DECISION]")] == [
        x for x in log1.splitlines() if x.startswith("[DECISION]")
    ]
    assert [p.suffix for p in (cache / "audits").iterdir()] == [".json"]  # no temp file left

    # Other settings: audited again, kept beside the first. With no noise allowed the audit
    # blocks; training says so (`mangaassist data audit` would exit 1) and goes on.
    _, out3, log3 = run("c", audit={"cv_folds": 3, "label_noise_max": 0.0})
    assert len(calls) == 2 and len(list((cache / "audits").iterdir())) == 2
    assert "blocking=yes" in log3
    assert (
        '[DATA] warning=audit_blocking by=relabel_review note="the audit says relabel before '
        "training (estimated label noise above label_noise_max); training goes on with the "
        f'labels as they are: see {out3 / "label_suspects.csv"}"'
    ) in log3.splitlines()


def test_smoke_uses_the_small_corpus(tmp_path):
    cfg = compose_cfg(["experiment=smoke"], tmp_path)
    assert (cfg.data.name, cfg.data.source.n) == ("mangaassist_small", 3000)
    assert compose_cfg([], tmp_path).data.source.n == 55000  # the default run is unchanged
    assert compose_cfg(["experiment=smoke", "data=banking77"], tmp_path).data.name == "banking77"
