from __future__ import annotations

import json
import math
import random
from pathlib import Path
from statistics import mean
from typing import Any

import polars as pl
import pytest

from curation.core.errors import ProblemsError
from curation.core.failures import failures
from curation.core.result_schemas import TRANSFER_SCHEMA
from training.report import main, run_report

SOURCES = ("cdl", "eurocrops", "nccm")
BACKBONES = ("imagenet", "ssl4eo")
METRICS = ("oa", "aa", "miou", "recall_rice")
CLASSES = ("maize", "rice", "other")
SORT = ["protocol", "backbone", "target_source", "k", "test_source", "metric", "run_id"]


def fake_runs(seed: int = 0) -> dict[str, list[dict[str, object]]]:
    """Per entry (one per backbone), the metric rows of id runs (k 4, 20) and ood runs (k 0) on every source."""
    rng = random.Random(seed)
    entries: dict[str, list[dict[str, object]]] = {}
    for backbone in BACKBONES:
        rows: list[dict[str, object]] = []
        runs = [("id", target, k) for target in SOURCES for k in (4, 20)] + [("ood", t, 0) for t in SOURCES]
        for protocol, target, k in runs:
            train = target if protocol == "id" else "+".join(s for s in SOURCES if s != target)
            for test in SOURCES:
                for metric in METRICS:
                    absent = metric == "recall_rice" and test == "nccm"
                    rows.append(
                        {
                            "run_id": f"{protocol}-{backbone}-{target}-k{k}",
                            "protocol": protocol,
                            "backbone": backbone,
                            "target_source": target,
                            "train_sources": train,
                            "k": k,
                            "test_source": test,
                            "metric": metric,
                            "value": math.nan if absent else round(rng.random(), 4),
                            "crosswalk_set": "toolkit",
                            "weights": "random" if backbone == "imagenet" else "pretrained",
                            "weights_file": None if backbone == "imagenet" else "ssl4eo.pth",
                        }
                    )
        entries[f"all_{backbone}_all_all"] = rows
    return entries


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={name: column.dtype.type for name, column in TRANSFER_SCHEMA.columns.items()})


def confusion(rows: list[dict[str, object]]) -> pl.DataFrame:
    cells = sorted({(str(r["run_id"]), str(r["test_source"])) for r in rows})
    out = [
        {"run_id": run, "test_source": test, "target_class": a, "predicted_class": b, "pixels": (i * 7 + j) % 5}
        for i, (run, test) in enumerate(cells)
        for j, (a, b) in enumerate((a, b) for a in CLASSES for b in CLASSES)
    ]
    schema = {"run_id": pl.String, "test_source": pl.String, "target_class": pl.String, "predicted_class": pl.String}
    return pl.DataFrame(out, schema={**schema, "pixels": pl.Int64})


def write_evals(root: Path, entries: dict[str, list[dict[str, object]]]) -> Path:
    for name, rows in entries.items():
        (root / name).mkdir(parents=True)
        frame(rows).sample(fraction=1.0, shuffle=True, seed=1).write_parquet(root / name / "metrics.parquet")
        confusion(rows).write_parquet(root / name / "confusion.parquet")
    return root


@pytest.fixture
def evals(tmp_path: Path) -> Path:
    return write_evals(tmp_path / "evals", fake_runs())


def all_rows() -> list[dict[str, object]]:
    return [row for rows in fake_runs().values() for row in rows]


def report(evals: Path, out: Path) -> dict[str, Any]:
    return run_report(evals, out, heatmap_metric="miou", curve_metric="oa")


def test_transfer_is_every_row_sorted(evals: Path, tmp_path: Path) -> None:
    report(evals, tmp_path / "metrics")
    transfer = pl.read_parquet(tmp_path / "metrics" / "transfer.parquet")
    expected = frame(all_rows()).sort(SORT)
    assert transfer.height == 2 * 9 * 3 * len(METRICS)
    assert transfer.columns == list(TRANSFER_SCHEMA.columns)
    assert transfer.equals(expected, null_equal=True)  # NaN values of absent classes kept as NaN
    assert transfer["value"].is_nan().sum() == 2 * 9
    confusion_out = pl.read_parquet(tmp_path / "metrics" / "confusion.parquet")
    inputs = [pl.read_parquet(p) for p in sorted(evals.glob("*/confusion.parquet"))]
    assert confusion_out.equals(pl.concat(inputs).sort("run_id", "test_source", "target_class", "predicted_class"))


def test_schema_reports_every_failure_at_once() -> None:
    rows = fake_runs()["all_ssl4eo_all_all"]
    bad = [dict(row) for row in rows]
    bad[3]["value"] = 1.5
    bad[5]["weights"] = "imagenet"
    bad.append(dict(bad[0]))
    rules = {(f.column, f.rule) for f in failures(frame(bad), TRANSFER_SCHEMA)}
    assert rules == {
        ("value", "value in [0, 1] or NaN"),
        ("weights", "weights pretrained or random"),
        (None, "unique (run_id, test_source, metric)"),
    }
    assert failures(frame(rows), TRANSFER_SCHEMA) == []


def test_bad_table_is_one_error_naming_file_rules_and_fix(tmp_path: Path) -> None:
    entries = fake_runs()
    entries["all_ssl4eo_all_all"][3]["value"] = 1.5
    entries["all_ssl4eo_all_all"][5]["weights"] = "imagenet"
    entries["all_imagenet_all_all"].append(dict(entries["all_imagenet_all_all"][0]))
    evals = write_evals(tmp_path / "evals", entries)
    with pytest.raises(ProblemsError) as caught:
        report(evals, tmp_path / "metrics")
    message = str(caught.value)
    assert len(caught.value.problems) == 3
    for text in ("value in [0, 1] or NaN", "weights pretrained or random", "unique (run_id, test_source, metric)"):
        assert text in message
    assert str(evals / "all_ssl4eo_all_all" / "metrics.parquet") in message
    assert str(evals / "all_imagenet_all_all" / "metrics.parquet") in message
    assert "Fix:" in message
    assert not (tmp_path / "metrics").exists()


def test_duplicate_runs_across_entries_are_an_error(tmp_path: Path) -> None:
    entries = fake_runs()
    entries["copy"] = entries["all_ssl4eo_all_all"][:2]
    with pytest.raises(ProblemsError, match=r"unique \(run_id, test_source, metric\)"):
        report(write_evals(tmp_path / "evals", entries), tmp_path / "metrics")


def test_summary_is_hand_computed_means(evals: Path, tmp_path: Path) -> None:
    result = report(evals, tmp_path / "metrics")
    assert json.loads((tmp_path / "metrics" / "summary.json").read_text()) == result
    rows = all_rows()
    assert sorted(result) == ["id", "ood"]
    for protocol, runs in (("id", 6), ("ood", 3)):
        assert sorted(result[protocol]) == list(BACKBONES)
        for backbone in BACKBONES:
            cell = result[protocol][backbone]
            assert cell["runs"] == runs
            mine = [r for r in rows if r["protocol"] == protocol and r["backbone"] == backbone]
            run_ids = sorted({str(r["run_id"]) for r in mine})
            for metric in ("oa", "aa", "miou"):
                own = [r["value"] for r in mine if r["metric"] == metric and r["test_source"] == r["target_source"]]
                others = [
                    mean(
                        float(r["value"])
                        for r in mine
                        if r["run_id"] == run and r["metric"] == metric and r["test_source"] != r["target_source"]
                    )
                    for run in run_ids
                ]
                assert cell["target"][metric] == pytest.approx(mean(own), abs=1e-6)
                assert cell["transfer"][metric] == pytest.approx(mean(others), abs=1e-6)


def test_plot_tables(evals: Path, tmp_path: Path) -> None:
    report(evals, tmp_path / "metrics")
    heatmap = pl.read_csv(tmp_path / "metrics" / "plots" / "transfer.csv")
    assert heatmap.columns == ["backbone", "protocol", "k", "train", "test", "value"]
    assert heatmap.height == 2 * 9 * 3
    rows = all_rows()
    one = next(
        r for r in rows if r["run_id"] == "ood-ssl4eo-nccm-k0" and r["test_source"] == "cdl" and r["metric"] == "miou"
    )
    cell = heatmap.filter(
        (pl.col("backbone") == "ssl4eo") & (pl.col("protocol") == "ood") & (pl.col("train") == "nccm")
    ).filter(pl.col("test") == "cdl")
    assert cell["k"].to_list() == [0]
    assert cell["value"].to_list() == [pytest.approx(one["value"])]

    curves = pl.read_csv(tmp_path / "metrics" / "plots" / "learning_curves.csv")
    assert curves.columns == ["backbone", "protocol", "k", "value"]
    keys = [(b, p, k) for b, p, k in curves.select("backbone", "protocol", "k").iter_rows()]
    assert keys == [(b, p, k) for b in BACKBONES for p, ks in (("id", (4, 20)), ("ood", (0,))) for k in ks]
    for backbone, protocol, k, value in curves.iter_rows():
        own = [
            r["value"]
            for r in rows
            if (r["backbone"], r["protocol"], r["k"], r["metric"]) == (backbone, protocol, k, "oa")
            and r["test_source"] == r["target_source"]
        ]
        assert len(own) == len(SOURCES)
        assert value == pytest.approx(mean(own), abs=1e-6)


def test_unknown_plot_metric_names_the_param(evals: Path, tmp_path: Path) -> None:
    with pytest.raises(ProblemsError, match=r"report\.heatmap_metric.*use one of aa, miou, oa, recall_rice"):
        run_report(evals, tmp_path / "metrics", heatmap_metric="kappa", curve_metric="oa")


def test_same_inputs_same_bytes(evals: Path, tmp_path: Path) -> None:
    report(evals, tmp_path / "a")
    report(evals, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [str(p) for p in files] == [
        "confusion.parquet",
        "plots/learning_curves.csv",
        "plots/transfer.csv",
        "summary.json",
        "transfer.parquet",
    ]
    for path in files:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path


@pytest.mark.parametrize("make", [False, True])
def test_missing_or_empty_evals_says_run_evaluate(tmp_path: Path, make: bool) -> None:
    evals = tmp_path / "evals"
    if make:
        evals.mkdir()
    with pytest.raises(ProblemsError, match="run `dvc repro evaluate`") as caught:
        report(evals, tmp_path / "metrics")
    assert str(evals) in str(caught.value)


def test_entry_without_metrics_is_named(evals: Path, tmp_path: Path) -> None:
    (evals / "all_ssl4eo_all_all" / "metrics.parquet").unlink()
    with pytest.raises(ProblemsError, match=r"all_ssl4eo_all_all.*run `dvc repro evaluate`"):
        report(evals, tmp_path / "metrics")


def write_params(path: Path, evals: Path, out: Path) -> Path:
    text = f"evaluate:\n  out: {evals}\nreport:\n  out: {out}\n  heatmap_metric: miou\n  curve_metric: oa\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_main_reads_its_params_section(evals: Path, tmp_path: Path) -> None:
    main(["--params", str(write_params(tmp_path / "params.yaml", evals, tmp_path / "metrics"))])
    assert (tmp_path / "metrics" / "summary.json").is_file()
    assert (tmp_path / "metrics" / "plots" / "transfer.csv").is_file()


def test_main_prints_the_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path / "params.yaml", tmp_path / "none", tmp_path / "metrics")
    with pytest.raises(SystemExit) as caught:
        main(["--params", str(params)])
    assert caught.value.code == 1
    assert "run `dvc repro evaluate`" in capsys.readouterr().err
