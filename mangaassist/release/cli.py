"""``mangaassist gate | registry``: decide on a model and keep it.

Exit status: 0 success (``gate``: promote=yes), 1 ``gate`` rejected, 2 a user error
(printed by :mod:`mangaassist.cli`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _gate(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.settings import load_eval_settings, load_gate_settings
    from mangaassist.release.gates import format_decision
    from mangaassist.release.promotion import gate_candidate, record_gate
    from mangaassist.release.registry import Registry

    evidence = {"load_test": args.load_test, "shadow_report": args.shadow_report}
    decision = gate_candidate(
        args.candidate,
        Registry(args.root),
        load_eval_settings(path=Path(args.eval_config) if args.eval_config else None),
        load_gate_settings(Path(args.gates) if args.gates else None),
        data=Path(args.data) if args.data else None,
        load_test=Path(args.load_test) if args.load_test else None,
        shadow_report=Path(args.shadow_report) if args.shadow_report else None,
    )
    for line in format_decision(decision):
        print(line)
    if decision.promote and args.promote:
        # Recorded before registering, so the new version's model card shows the gate table.
        record_gate(args.candidate, Registry(args.root), decision, evidence)
        _register_and_promote(args.candidate, Registry(args.root), decision.reason)
    return 0 if decision.promote else 1


def _register_and_promote(candidate: str, reg, reason: str) -> None:
    """After promote=yes: register a run directory (a version is already in), then promote it."""
    from mangaassist.release.model_card import render_model_card
    from mangaassist.release.promotion import resolve_model

    path, name = resolve_model(candidate, reg)
    if path.resolve().parent != (reg.root / "versions").resolve():
        name = reg.register(
            path, extra_files=lambda v, folder: {"MODEL_CARD.md": render_model_card(v, folder)}
        )
        print(f"[REGISTRY] event=register version={name} source={path} root={reg.root}")
    before = reg.champion()
    reg.promote(name, reason=f"gate: {reason}")
    print(f"[REGISTRY] event=promote version={name} from={before or 'none'}")


def _registry_list(args: argparse.Namespace) -> int:
    from mangaassist.comparison.tables import num, pct
    from mangaassist.release.registry import Registry

    reg = Registry(args.root)
    champion = reg.champion()
    versions = reg.versions()
    if not versions:
        print(
            f"no model versions yet in the registry at {reg.root}/; "
            "add one with: mangaassist registry register RUN_DIR"
        )
        return 0

    print(
        f"{'':2}{'version':8} {'created':26} {'acc':>6} {'mF1':>6} {'rare':>6} {'p95ms':>6}  source"
    )
    for v in versions:
        info = reg.info(v)
        m = info.get("metrics", {})
        p95 = m.get("latency/p95_ms")
        print(
            f"{'*' if v == champion else ' ':2}{v:8} {info['created_at']:26} "
            f"{pct(m.get('test/acc')):>6} {pct(m.get('test/macro_f1')):>6} "
            f"{pct(m.get('test/rare_recall')):>6} {num(p95, 1):>6}  "
            f"{info['source']}"
        )
    print(f"champion: {champion or 'none'}")
    return 0


def _registry_register(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.artifacts import check_run_dir
    from mangaassist.release.model_card import render_model_card
    from mangaassist.release.registry import Registry

    run_dir = check_run_dir(args.run_dir)
    if not (run_dir / "eval" / "test" / "metrics.json").is_file():
        from mangaassist.evaluation.after_training import post_train

        print(f'[REGISTRY] note="{run_dir} has no eval/test; calibrating and evaluating it first"')
        post_train(run_dir)
    reg = Registry(args.root)
    version = reg.register(
        run_dir, extra_files=lambda v, folder: {"MODEL_CARD.md": render_model_card(v, folder)}
    )
    print(f"[REGISTRY] event=register version={version} source={run_dir} root={reg.root}")
    return 0


def _registry_promote(args: argparse.Namespace) -> int:
    from mangaassist.release.registry import Registry

    reg = Registry(args.root)
    before = reg.champion()
    reg.promote(args.version, reason=args.reason or "")
    print(f"[REGISTRY] event=promote version={args.version} from={before or 'none'}")
    return 0


def _registry_rollback(args: argparse.Namespace) -> int:
    from mangaassist.release.registry import Registry

    reg = Registry(args.root)
    before = reg.champion()
    now = reg.rollback()
    print(f"[REGISTRY] event=rollback version={now} from={before}")
    return 0


def _registry_gate_set(args: argparse.Namespace) -> int:
    from mangaassist.data.schema import read_examples
    from mangaassist.errors import UserError
    from mangaassist.release.promotion import training_overlap
    from mangaassist.release.registry import GATE_SET_FILE, Registry

    reg = Registry(args.root)
    examples = read_examples(args.file)
    champion = reg.champion()
    if champion is not None:
        # Every gate would refuse a set the champion trained on: say so now, not at each gate.
        count, files = training_overlap(examples, reg.path(champion), reg)
        if count:
            raise UserError(
                f"{args.file}: {count} of its {len(examples)} messages are in the champion "
                f"{champion}'s training data ({files}, same text after normalisation); a gate "
                "set must be held out from every model's training. Remove them and retry"
            )
        overlap = "unverified" if count is None else "0"
    else:
        overlap = "no_champion"
    done = reg.set_gate_set(examples, str(args.file), replace=args.replace)
    print(
        f"[REGISTRY] event=gate_set n={done['n']} sha256={done['sha256'][:12]} "
        f"changed={'yes' if done['changed'] else 'no'} champion_overlap={overlap} "
        f"path={reg.root / GATE_SET_FILE}"
    )
    return 0


def _registry_history(args: argparse.Namespace) -> int:
    from mangaassist.release.registry import Registry

    for event in Registry(args.root).history():
        print(json.dumps(event))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``gate`` and ``registry`` to the top-level parser."""
    root_help = "registry folder (default $MANGAASSIST_REGISTRY, else ./registry)"

    gt = sub.add_parser("gate", help="compare a candidate with the champion; [DECISION] line")
    gt.add_argument("candidate", help="run directory or registry version (v3)")
    gt.add_argument(
        "--data",
        help="comparison set (default: gates.gate_set, else <root>/gate_set.jsonl, else the "
        "candidate's data/test.jsonl); refused if either model trained on any of its messages",
    )
    gt.add_argument("--gates", help="gate settings YAML (default conf/gates/default.yaml)")
    gt.add_argument("--eval-config", help="evaluation settings YAML (default conf/evaluation)")
    gt.add_argument("--root", type=Path, default=None, help=root_help)
    gt.add_argument(
        "--load-test",
        metavar="FILE",
        help="the candidate's `mangaassist loadtest --out` JSON: P95 and error rate under load",
    )
    gt.add_argument(
        "--shadow-report",
        metavar="FILE",
        help="the candidate's `mangaassist shadow-report --json` JSON: agreement, critical intents",
    )
    gt.add_argument(
        "--promote",
        action="store_true",
        help="on promote=yes, register the candidate (if a run directory) and make it champion",
    )
    gt.set_defaults(func=_gate)

    reg = sub.add_parser("registry", help="list, register, promote, roll back model versions")
    reg.add_argument("--root", type=Path, default=None, help=root_help)
    reg_sub = reg.add_subparsers(dest="registry_command", required=True)
    commands = {
        "list": ("versions with headline metrics; * marks the champion", _registry_list),
        "register": ("copy a run into the next version, with a model card", _registry_register),
        "promote": ("make a version the champion", _registry_promote),
        "rollback": ("restore the previous champion", _registry_rollback),
        "history": ("the event log, one JSON object per line", _registry_history),
        "gate-set": (
            "configure the fixed set every gate compares on (once per registry)",
            _registry_gate_set,
        ),
    }
    for name, (text, func) in commands.items():
        p = reg_sub.add_parser(name, help=text)
        # Accepted after the subcommand too; SUPPRESS keeps the parent's value when absent.
        p.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=root_help)
        p.set_defaults(func=func)
        if name == "register":
            p.add_argument("run_dir", help="a finished training run directory")
        elif name == "gate-set":
            p.add_argument(
                "file",
                type=Path,
                help="labelled JSONL/CSV held out from every model's training (e.g. a slice of "
                "labelled real traffic plus the golden set); copied to <root>/gate_set.jsonl",
            )
            p.add_argument(
                "--replace",
                action="store_true",
                help="replace a different gate set already configured",
            )
        elif name == "promote":
            p.add_argument("version", help="e.g. v3")
            p.add_argument("--reason", help="recorded in history.jsonl")
