from __future__ import annotations

import json
import math
import random
from pathlib import Path
from statistics import mean
from typing import Any

import polars as pl
import pytest
import yaml

from curation.core.errors import ProblemsError
from curation.core.failures import failures
from curation.core.params import load_section
from curation.core.reference import VS_REFERENCE_SCHEMA, read_reference
from curation.core.registry import source_names
from curation.core.result_schemas import SPLIT_BIAS_RUN_SCHEMA, SPLIT_BIAS_SCHEMA, TRANSFER_SCHEMA
from training.config import ReportParams
from training.report import main, run_report

SOURCES = ("cdl", "eurocrops", "nccm")
BACKBONES = ("imagenet", "ssl4eo")
METRICS = ("oa", "aa", "miou", "recall_rice")
CLASSES = ("maize", "rice", "other")
NAMES = ["ignore", *CLASSES]  # by class id, as the confusion tables name them
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
                            "seed": 0,
                            "balance": "base",
                            "test_source": test,
                            "metric": metric,
                            "value": math.nan if absent else round(rng.random(), 4),
                            "crosswalk_set": "toolkit",
                            "weights": "random" if backbone == "imagenet" else "pretrained",
                            "weights_file": None if backbone == "imagenet" else "ssl4eo.pth",
                            "weights_sha256": None if backbone == "imagenet" else "ab" * 32,
                            "weights_licence": None if backbone == "imagenet" else "CC-BY-4.0",
                            "data_version": "0f" * 32,
                            "origin": "computed",
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


CHIPS_PER_TEST = 3


def chip_confusion(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Three test chips per source, each with a few non-zero cells (seeded by run and test set)."""
    cells = sorted({(str(r["run_id"]), str(r["test_source"])) for r in rows})
    out = []
    for run, test in cells:
        rng = random.Random(f"{run}/{test}")
        for chip in range(CHIPS_PER_TEST):
            for a in CLASSES:
                for b in CLASSES:
                    pixels = rng.randint(0, 9) + (20 if a == b else 0)
                    if pixels:
                        cell = {"target_class": a, "predicted_class": b, "pixels": pixels}
                        out.append({"run_id": run, "test_source": test, "chip_id": f"{test}_{chip}", **cell})
    schema = {name: pl.String for name in ("run_id", "test_source", "chip_id", "target_class", "predicted_class")}
    return pl.DataFrame(out, schema={**schema, "pixels": pl.Int64})


def write_evals(root: Path, entries: dict[str, list[dict[str, object]]]) -> Path:
    for name, rows in entries.items():
        (root / name).mkdir(parents=True)
        frame(rows).sample(fraction=1.0, shuffle=True, seed=1).write_parquet(root / name / "metrics.parquet")
        confusion(rows).write_parquet(root / name / "confusion.parquet")
        chip_confusion(rows).write_parquet(root / name / "chip_confusion.parquet")
        split_bias_runs(rows).write_parquet(root / name / "split_bias.parquet")
    return root


def split_bias_runs(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Every id run's metrics on its own blocked test set (the rows' values) and a random one 0.1 higher."""
    own = [r for r in rows if r["protocol"] == "id" and r["test_source"] == r["target_source"]]
    out = [
        {
            **{key: r[key] for key in ("run_id", "backbone", "target_source", "k", "seed", "balance", "metric")},
            "blocked": r["value"],
            "random": r["value"] if math.isnan(float(str(r["value"]))) else min(1.0, float(str(r["value"])) + 0.1),
            "blocked_chips": 8,
            "random_chips": 8,
        }
        for r in own
    ]
    return pl.DataFrame(out, schema={n: c.dtype.type for n, c in SPLIT_BIAS_RUN_SCHEMA.columns.items()})


@pytest.fixture
def evals(tmp_path: Path) -> Path:
    return write_evals(tmp_path / "evals", fake_runs())


def all_rows() -> list[dict[str, object]]:
    return [row for rows in fake_runs().values() for row in rows]


def report(evals: Path, out: Path, reference: Path | None = None) -> dict[str, Any]:
    return run_report(evals, out, heatmap_metric="miou", curve_metric="oa", classes=NAMES, reference=reference)


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
        ("weights", "weights pretrained, random or none"),
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
    for text in (
        "value in [0, 1] or NaN",
        "weights pretrained, random or none",
        "unique (run_id, test_source, metric)",
    ):
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
        run_report(evals, tmp_path / "metrics", heatmap_metric="kappa", curve_metric="oa", classes=NAMES)


def test_same_inputs_same_bytes(evals: Path, tmp_path: Path) -> None:
    reference = write_reference(tmp_path / "reference.csv", REFERENCE_ROWS)
    report(evals, tmp_path / "a", reference)
    report(evals, tmp_path / "b", reference)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [str(p) for p in files] == [
        "balance.parquet",
        "chip_confusion.parquet",
        "comparisons.parquet",
        "confusion.parquet",
        "intervals.parquet",
        "plots/learning_curves.csv",
        "plots/transfer.csv",
        "plots/vs_reference.csv",
        "split_bias.parquet",
        "summary.json",
        "transfer.parquet",
        "vs_reference.parquet",
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


def write_params(path: Path, evals: Path, out: Path, reference: Path | None = None) -> Path:
    """The project's `shared` section (the taxonomy names the classes) and the report's own, on these folders."""
    shared = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))["shared"]
    text = yaml.safe_dump({"shared": shared}, sort_keys=False)
    text += f"evaluate:\n  out: {evals}\nreport:\n  out: {out}\n  heatmap_metric: miou\n  curve_metric: oa\n"
    text += f"  reference: {'null' if reference is None else reference}\n"
    text += "  bootstrap: {resamples: 200, level: 0.95, seed: 0}\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_main_reads_its_params_section(evals: Path, tmp_path: Path) -> None:
    reference = write_reference(tmp_path / "reference.csv", REFERENCE_ROWS)
    main(["--params", str(write_params(tmp_path / "params.yaml", evals, tmp_path / "metrics", reference))])
    assert (tmp_path / "metrics" / "summary.json").is_file()
    assert (tmp_path / "metrics" / "plots" / "transfer.csv").is_file()
    assert pl.read_parquet(tmp_path / "metrics" / "vs_reference.parquet").height == len(REFERENCE_ROWS)


def test_main_prints_the_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_params(tmp_path / "params.yaml", tmp_path / "none", tmp_path / "metrics")
    with pytest.raises(SystemExit) as caught:
        main(["--params", str(params)])
    assert caught.value.code == 1
    assert "run `dvc repro evaluate`" in capsys.readouterr().err


# The study's published table beside ours: `report.reference`.
REFERENCE_HEADER = "protocol,backbone,target_source,k,metric,value_pct,origin"
REFERENCE_ROWS = [  # protocol, backbone, target source, k, metric, percent, origin
    ("ood", "ssl4eo", "cdl", 0, "oa", 74.51, "sheet"),
    ("ood", "ssl4eo", "cdl", 0, "oa", 70.0, "plot"),  # the same cell from another of the study's files
    ("id", "ssl4eo", "nccm", 4, "miou", 30.25, "sheet"),
    ("id", "imagenet", "cdl", 20, "oa", 12.5, "sheet"),
    ("ood", "ssl4eo", "eurocrops", 0, "oa", 61.48, "sheet"),  # ours is NaN: no number beside theirs
    ("id", "ssl4eo", "nccm", 10, "miou", 40.0, "sheet"),  # we ran no k = 10
    ("ood+k", "ssl4eo", "cdl", 10, "f1_macro", 20.0, "sheet"),  # nor ood+k
    ("id", "ssl4eo", "nccm", 4, "aa_study", 10.0, "sheet"),  # nor that metric
]


def write_reference(path: Path, rows: list[tuple[object, ...]], header: str = REFERENCE_HEADER) -> Path:
    path.write_text("\n".join([header, *(",".join(str(v) for v in row) for row in rows)]) + "\n", encoding="utf-8")
    return path


def nan_entries() -> dict[str, list[dict[str, object]]]:
    entries = fake_runs()
    for row in entries["all_ssl4eo_all_all"]:
        if row["run_id"] == "ood-ssl4eo-eurocrops-k0" and row["test_source"] == "eurocrops" and row["metric"] == "oa":
            row["value"] = math.nan
    return entries


def own_value(rows: list[dict[str, object]], run_id: str, test: str, metric: str) -> float:
    (value,) = [r["value"] for r in rows if (r["run_id"], r["test_source"], r["metric"]) == (run_id, test, metric)]
    return float(value)  # type: ignore[arg-type]


def test_reference_table_sets_theirs_beside_ours_in_percent(tmp_path: Path) -> None:
    entries = nan_entries()
    evals = write_evals(tmp_path / "evals", entries)
    report(evals, tmp_path / "metrics", write_reference(tmp_path / "reference.csv", REFERENCE_ROWS))
    table = pl.read_parquet(tmp_path / "metrics" / "vs_reference.parquet")
    assert failures(table, VS_REFERENCE_SCHEMA) == []
    keys = ["protocol", "backbone", "target_source", "k", "metric", "origin"]
    assert table.columns == [*keys, "theirs_pct", "ours_pct", "difference_pct", "runs", "crosswalk_set", "weights"]
    assert table.height == len(REFERENCE_ROWS)  # one row per published number, ours or not
    assert table.select(keys).rows() == sorted((p, b, t, k, m, o) for p, b, t, k, m, _, o in REFERENCE_ROWS)
    rows = [row for part in entries.values() for row in part]
    by_key = {tuple(r[c] for c in keys): r for r in table.iter_rows(named=True)}
    expected = {
        ("ood", "ssl4eo", "cdl", 0, "oa", "sheet"): (74.51, own_value(rows, "ood-ssl4eo-cdl-k0", "cdl", "oa")),
        ("ood", "ssl4eo", "cdl", 0, "oa", "plot"): (70.0, own_value(rows, "ood-ssl4eo-cdl-k0", "cdl", "oa")),
        ("id", "ssl4eo", "nccm", 4, "miou", "sheet"): (30.25, own_value(rows, "id-ssl4eo-nccm-k4", "nccm", "miou")),
        ("id", "imagenet", "cdl", 20, "oa", "sheet"): (12.5, own_value(rows, "id-imagenet-cdl-k20", "cdl", "oa")),
    }
    for key, (theirs, fraction) in expected.items():
        row = by_key[key]
        assert row["theirs_pct"] == theirs and row["runs"] == 1
        assert row["ours_pct"] == pytest.approx(100 * fraction, abs=1e-6)  # our fractions, in percent
        assert row["difference_pct"] == pytest.approx(100 * fraction - theirs, abs=1e-6)
        assert row["crosswalk_set"] == "toolkit"
    assert by_key[("id", "imagenet", "cdl", 20, "oa", "sheet")]["weights"] == "random"
    nan = by_key[("ood", "ssl4eo", "eurocrops", 0, "oa", "sheet")]
    assert (nan["ours_pct"], nan["difference_pct"], nan["runs"]) == (None, None, 1)  # a run, but no number
    for key in [("id", "ssl4eo", "nccm", 10, "miou"), ("ood+k", "ssl4eo", "cdl", 10, "f1_macro")]:
        row = by_key[(*key, "sheet")]
        assert (row["ours_pct"], row["difference_pct"], row["runs"], row["weights"]) == (None, None, 0, None)
    assert by_key[("id", "ssl4eo", "nccm", 4, "aa_study", "sheet")]["ours_pct"] is None

    plot = pl.read_csv(tmp_path / "metrics" / "plots" / "vs_reference.csv")
    assert plot.columns == ["cell", "backbone", "metric", "origin", "theirs_pct", "ours_pct", "difference_pct"]
    assert plot.height == 4 and "ood k=0 cdl" in plot["cell"].to_list()  # the cells we ran, with a number


def test_without_a_reference_the_comparison_is_written_empty(evals: Path, tmp_path: Path) -> None:
    report(evals, tmp_path / "metrics")
    table = pl.read_parquet(tmp_path / "metrics" / "vs_reference.parquet")
    assert table.is_empty() and table.columns == list(VS_REFERENCE_SCHEMA.columns)
    assert failures(table, VS_REFERENCE_SCHEMA) == []
    plot = (tmp_path / "metrics" / "plots" / "vs_reference.csv").read_text()
    assert plot == "cell,backbone,metric,origin,theirs_pct,ours_pct,difference_pct\n"


def test_a_bad_reference_is_one_error_naming_lines_rules_and_fixes(evals: Path, tmp_path: Path) -> None:
    rows = [
        ("OOD", "ssl4eo", "cdl", 0, "oa", 50, "sheet"),  # line 2: protocol
        ("id", "ssl4eo", "usa", 10, "kappa", 50, "sheet"),  # line 3: source and metric
        ("id", "ssl4eo", "cdl", 10, "oa", 0.5, "sheet"),  # line 4: fine (a fraction is a small percent)
        ("id", "ssl4eo", "cdl", 10, "oa", 150, "sheet"),  # line 5: percent, and line 4's cell again
        ("ood", "ssl4eo", "cdl", 10, "oa", 50, "sheet"),  # line 6: ood with target chips
    ]
    bad = write_reference(tmp_path / "reference.csv", rows)
    with pytest.raises(ProblemsError) as caught:
        report(evals, tmp_path / "metrics", bad)
    message = str(caught.value)
    assert "the reference results break the reference results schema (7 problems)" in message
    for line, text in [
        (2, "known protocol: column 'protocol' value 'OOD'. Fix: use one of: id, ood, ood+k"),
        (3, "known target_source: column 'target_source' value 'usa'. Fix: use one of: cdl,"),
        (3, "known metric: column 'metric' value 'kappa'. Fix: use one of: oa, aa, aa_study, miou, f1_macro"),
        (5, "a number in [0, 100] (percent): column 'value_pct' value '150'. Fix: write the value in percent"),
        (5, "unique (protocol, backbone, target_source, k, metric, origin): id ssl4eo cdl k=10 oa (sheet) is listed"),
        (6, "k = 0 exactly for ood: ood ssl4eo cdl k=10 oa (sheet). Fix: ood trains on no target chip"),
    ]:
        assert f"{bad}:{line}: {text}" in message, (line, text)
    assert not (tmp_path / "metrics").exists()  # checked before anything is written


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "protocol,backbone,target,k,metric,value,origin",
            "header is protocol,backbone,target,k,metric,value,origin (missing ['target_source', 'value_pct'], "
            "unknown ['target', 'value']). Fix: use the header protocol,backbone,target_source,k,metric,value_pct,",
        ),
        ("backbone,protocol,target_source,k,metric,value_pct,origin", "(out of order)"),
    ],
)
def test_a_reference_with_other_columns_names_the_header(
    evals: Path, tmp_path: Path, header: str, expected: str
) -> None:
    bad = write_reference(tmp_path / "reference.csv", [], header=header)
    with pytest.raises(ProblemsError, match="cannot read the reference results") as caught:
        report(evals, tmp_path / "metrics", bad)
    assert f"{bad}: reference columns: " in str(caught.value) and expected in str(caught.value)


def test_a_missing_reference_names_the_param(evals: Path, tmp_path: Path) -> None:
    with pytest.raises(ProblemsError, match=r"no such file \(params report\.reference\).*set it to null"):
        report(evals, tmp_path / "metrics", tmp_path / "none.csv")


def test_the_studys_table_is_committed_and_reads(tmp_path: Path) -> None:
    """params.yaml points at the project's copy of the study's table (identical to ../shared's, where present)."""
    root = Path(__file__).resolve().parents[2]
    params = load_section(ReportParams, root / "params.yaml")
    assert params.reference == Path("reference/study_results_v1.csv")
    path = root / params.reference
    shared = root.parent / "shared" / "reference" / "study-results" / "study_results_v1.csv"
    if shared.is_file():
        assert path.read_bytes() == shared.read_bytes()
    table = read_reference(path, source_names())
    assert table.height == 203 and table["backbone"].unique().to_list() == ["ssl4eo"]
    assert set(table["metric"]) == {"oa", "aa_study", "miou", "f1_macro"}
    cells = table.group_by("protocol").agg(pl.col("k").unique().sort())
    assert dict(cells.iter_rows()) == {
        "id": [10, 100, 900],
        "ood": [0],
        "ood+k": [10, 100, 900],
    }
    assert table["target_source"].n_unique() == 6 and table["value_pct"].is_between(0, 100).all()


def test_intervals_and_comparisons_cover_every_cell(evals: Path, tmp_path: Path) -> None:
    """One interval row per cell and metric (one seed: no std); backbones compared at each id k, k 4 vs 20 per
    backbone; every interval brackets its value's chip-resampled spread."""
    report(evals, tmp_path / "metrics")
    spread = pl.read_parquet(tmp_path / "metrics" / "intervals.parquet")
    cells = {(r["protocol"], r["backbone"], r["target_source"], r["k"], r["test_source"]) for r in all_rows()}
    assert spread.height == len(cells) * 3  # the default metrics: oa, aa, miou
    assert set(spread["metric"]) == {"oa", "aa", "miou"}
    assert (spread["seeds"] == 1).all() and spread["std"].is_null().all()
    valid = spread.drop_nulls("mean")
    assert ((valid["ci_low"] <= valid["ci_high"]) & (valid["ci_high"] <= 1.0) & (valid["ci_low"] >= 0.0)).all()
    paired = pl.read_parquet(tmp_path / "metrics" / "comparisons.parquet")
    backbone = paired.filter(pl.col("comparison") == "backbone")
    assert set(zip(backbone["a"], backbone["b"], strict=True)) == {("imagenet", "ssl4eo")}
    assert set(backbone["k"]) == {0, 4, 20}
    sizes = paired.filter(pl.col("comparison") == "k")
    assert set(zip(sizes["a"], sizes["b"], strict=True)) == {("4", "20")}
    assert (paired["test_source"] == paired["target_source"]).all()  # only on each run's own target


def test_split_bias_is_random_minus_blocked_per_source_and_metric(evals: Path, tmp_path: Path) -> None:
    report(evals, tmp_path / "out")
    bias = pl.read_parquet(tmp_path / "out" / "split_bias.parquet")
    assert failures(bias, SPLIT_BIAS_SCHEMA) == []
    expected = {(b, t, k) for b in BACKBONES for t in SOURCES for k in (4, 20)}
    assert set(bias.select("backbone", "target_source", "k").iter_rows()) == expected
    oa = bias.filter(pl.col("metric") == "oa")
    capped = oa.filter(pl.col("blocked") <= 0.9)
    assert (capped["bias"] - 0.1).abs().max() < 1e-6  # the fake random set scores 0.1 higher
    assert (capped["random"] - capped["blocked"] - capped["bias"]).abs().max() < 1e-6
    assert oa["runs"].to_list() == [1] * oa.height and oa["bias_std"].is_null().all()  # one seed: no spread
    rice = bias.filter((pl.col("metric") == "recall_rice") & (pl.col("target_source") == "nccm"))
    assert rice["bias"].is_null().all()  # undefined on nccm's test set: no number, not a zero
