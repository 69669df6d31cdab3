"""Planning: the matrix entry's cells, each phase's chips (others' pools, pixel balance), the validation hold-out."""

from __future__ import annotations

import polars as pl
import pytest

from curation.core.errors import ParamsError
from training.config import TrainParams
from training.plans import PhasePlan, balance_pixels, hold_out, others_of, plan_entry, random_hold_out

from .conftest import train_section
from .world import SOURCES


def tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A manifest (chips 2 km apart on a line) and nested subsets of 2 and 4, without files."""
    rows, subsets = [], []
    for source in SOURCES:
        for number in range(8):
            chip_id = f"{source}_{number}"
            rows.append({"chip_id": chip_id, "source": source, "lon": 15.0 + number * 0.025, "lat": 0.0})
            if number < 4:
                subsets += [(chip_id, source, "train", 4)] + ([(chip_id, source, "train", 2)] if number < 2 else [])
    return pl.DataFrame(rows), pl.DataFrame(subsets, schema=["chip_id", "source", "split", "size"], orient="row")


def test_all_expands_to_valid_cells_only() -> None:
    """Protocols with target chips take every k > 0; `ood` runs once with k = 0."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section())
    plans = plan_entry(params, SOURCES, subsets, manifest, ("all", "ssl4eo", "cdl", "all"))
    assert [(p.protocol, p.k) for p in plans] == [
        ("id", 2), ("id", 4), ("ood", 0), ("ood+k", 2), ("ood+k", 4), ("pretrain-finetune", 2),
        ("pretrain-finetune", 4),
    ]  # fmt: skip
    ood = plans[2]
    assert ood.train_sources == ("eurocrops", "nccm")
    phase = ood.phases[0]
    assert {c.split("_")[0] for c in phase.train_ids + phase.val_ids} == {"eurocrops", "nccm"}
    assert len(phase.train_ids) + len(phase.val_ids) == 2 * params.others_size
    finetune = plans[-1].phases[1]
    assert finetune.sources == ("cdl",) and len(finetune.train_ids) + len(finetune.val_ids) == 4


def test_a_size_value_selects_one_k_and_skips_protocols_without_target() -> None:
    """An entry for k = 4 has no ood run; an entry for k = 0 has only ood."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section())
    assert {p.protocol for p in plan_entry(params, SOURCES, subsets, manifest, ("all", "ssl4eo", "nccm", 4))} == {
        "id", "ood+k", "pretrain-finetune"
    }  # fmt: skip
    assert [p.run_id for p in plan_entry(params, SOURCES, subsets, manifest, ("all", "satlas", "nccm", 0))] == [
        "ood-satlas-nccm-k0-s0"
    ]


def test_targets_narrow_the_runs_not_the_pools() -> None:
    """`train.targets` lists the sources runs train for: `all` in the matrix covers those; the others pools still
    draw from every source. An unknown name is an error naming the closest one."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section(targets=["nccm", "cdl"]))
    plans = plan_entry(params, SOURCES, subsets, manifest, ("ood", "ssl4eo", "all", 0))
    assert [p.target for p in plans] == ["cdl", "nccm"]  # shared.sources order
    assert plans[1].train_sources == ("cdl", "eurocrops")
    with pytest.raises(ParamsError, match=r"train\.matrix\.source"):  # not a target: no stage for it
        plan_entry(params, SOURCES, subsets, manifest, ("ood", "ssl4eo", "eurocrops", 0))
    typo = TrainParams.model_validate(train_section(targets=["cdl", "nccn"]))
    with pytest.raises(ParamsError, match=r"train\.targets.*did you mean 'nccm'\?"):
        plan_entry(typo, SOURCES, subsets, manifest, ("ood", "ssl4eo", "all", 0))
    for bad in ([], ["cdl", "cdl"]):
        with pytest.raises(ValueError, match="distinct sources"):
            TrainParams.model_validate(train_section(targets=bad))


def test_unknown_matrix_values_and_missing_sizes_are_named() -> None:
    """A typo in an axis or a size the subsets lack is an error naming the fix."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section())
    with pytest.raises(ParamsError, match=r"train\.matrix\.source"):
        plan_entry(params, SOURCES, subsets, manifest, ("id", "ssl4eo", "cdll", 2))
    with pytest.raises(ParamsError, match=r"did you mean 'satlas'\?"):
        plan_entry(params, SOURCES, subsets, manifest, ("id", "satlass", "cdl", 2))
    wrong = TrainParams.model_validate(train_section(others_size=3))
    with pytest.raises(ParamsError, match=r"subsets\.train_sizes"):
        plan_entry(wrong, SOURCES, subsets, manifest, ("ood", "ssl4eo", "cdl", 0))


def test_hold_out_takes_whole_blocks_and_never_everything() -> None:
    """Validation chips are whole spatial blocks; at least one chip stays for training."""
    manifest, _ = tables()
    ids = [f"cdl_{n}" for n in range(8)]
    held = hold_out(ids, manifest, share=0.25, block_m=5000.0, seed=0)  # blocks of 2-3 chips along the line
    assert 2 <= len(held) < len(ids)
    x = {c: int(c.split("_")[1]) for c in ids}
    assert max(x[c] for c in held) - min(x[c] for c in held) == len(held) - 1  # contiguous: whole blocks
    assert hold_out(ids, manifest, share=0.0, block_m=5000.0, seed=0) == set()
    assert hold_out(ids[:2], manifest, share=0.9, block_m=1e6, seed=0) == set()  # one block would be all
    assert hold_out(ids, manifest, 0.25, 5000.0, 0) == held  # seeded


def pool_tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Five sources of 8 chips of 16 pixels: sets of 2 and 4 that are not nested, 2 test chips, class counts.

    Chip n holds n // 2 ignore pixels and 8 `other` pixels if n is even, 4 if odd; nccm's chips hold 8 + n ignore
    pixels, so nccm has the fewest labelled pixels.
    """
    rows, subsets = [], []
    for source in ("cdl", "eurocrops", "nccm", "south_africa_crop_type", "agrifieldnet"):
        for number in range(8):
            chip_id = f"{source}_{number}"
            ignore = min(16, 8 + number) if source == "nccm" else number // 2
            other = min(16 - ignore, 8 - 4 * (number % 2))
            rows.append(
                {
                    "chip_id": chip_id, "source": source, "lon": 15.0 + number * 0.025, "lat": 0.0,
                    "height": 4, "width": 4, "px_ignore": ignore, "px_other": other,
                }
            )  # fmt: skip
            if number < 2:
                subsets.append((chip_id, source, "train", 2))
            elif number < 6:
                subsets.append((chip_id, source, "train", 4))
            else:
                subsets.append((chip_id, source, "test", 2))
    return pl.DataFrame(rows), pl.DataFrame(subsets, schema=["chip_id", "source", "split", "size"], orient="row")


FIVE = ("cdl", "eurocrops", "nccm", "south_africa_crop_type", "agrifieldnet")


def ood_phase(**changes: object) -> tuple[TrainParams, PhasePlan]:
    """The `ood` phase for the cdl target on the pool tables, under `train` params changed as given."""
    manifest, subsets = pool_tables()
    body = train_section(sizes=[2, 4], others_size="all", val_share=0.0)
    body.update(changes)
    params = TrainParams.model_validate(body)
    (plan,) = plan_entry(params, FIVE, subsets, manifest, ("ood", "ssl4eo", "cdl", 0))
    return params, plan.phases[0]


def test_others_size_all_is_every_training_chip_and_never_a_test_chip() -> None:
    """`all`: the union of a source's training sets (not nested here), without its test chips."""
    _, phase = ood_phase()
    chips = set(phase.train_ids)
    assert chips == {f"{s}_{n}" for s in FIVE[1:] for n in range(6)}
    assert not {c for c in chips if int(c.rsplit("_", 1)[1]) >= 6}  # test chips 6 and 7 of every source


def test_others_are_per_target_and_checked_against_the_sources() -> None:
    """`default` covers unlisted targets (the target itself left out); a named target has its own list."""
    others = {"default": ["cdl", "eurocrops", "nccm", "south_africa_crop_type"], "nccm": ["agrifieldnet"]}
    _, phase = ood_phase(others=others)
    assert phase.sources == ("eurocrops", "nccm", "south_africa_crop_type")  # no agrifieldnet, no cdl
    params = TrainParams.model_validate(train_section(others=others))
    assert others_of(params, "nccm", FIVE) == ["agrifieldnet"]
    assert others_of(params, "agrifieldnet", FIVE) == ["cdl", "eurocrops", "nccm", "south_africa_crop_type"]
    typo = TrainParams.model_validate(train_section(others={"default": "all", "cdl": ["ncm"]}))
    with pytest.raises(ParamsError, match=r"did you mean 'nccm'\?"):
        others_of(typo, "eurocrops", FIVE)
    alone = TrainParams.model_validate(train_section(others={"default": ["cdl"]}))
    with pytest.raises(ParamsError, match=r"add `others.cdl`"):
        others_of(alone, "cdl", FIVE)
    for wrong, message in (({"cdl": ["nccm"]}, "give `default:`"), ({"default": "all", "cdl": ["cdl"]}, "itself")):
        with pytest.raises(ValueError, match=message):
            TrainParams.model_validate(train_section(others=wrong))


def test_random_validation_split_is_seeded_share_of_the_whole_phase() -> None:
    """`random`: floor(share x chips) of the phase's chips, pooled over its sources, the same for the same seed."""
    _, phase = ood_phase(val_split="random", val_share=0.1)
    assert len(phase.val_ids) == 2 and len(phase.train_ids) == 22  # floor(0.1 x 24), as random_bbox_assignment
    assert not set(phase.val_ids) & set(phase.train_ids)
    assert ood_phase(val_split="random", val_share=0.1)[1] == phase
    assert random_hold_out([f"c{n}" for n in range(9)], 0.1, 0) == set()  # floor(0.9): no validation chip
    assert random_hold_out(["a", "b", "c", "d"], 0.5, 1) == random_hold_out(["d", "c", "b", "a"], 0.5, 1)


def test_study_pixel_balance_cuts_every_source_to_the_smallest_budget() -> None:
    """The source with the fewest labelled pixels keeps its chips; each other one takes its chips with the fewest
    ignore, then the fewest `other` pixels, until their labelled pixels reach that budget."""
    others = {"default": ["eurocrops", "nccm", "south_africa_crop_type"]}
    _, plain = ood_phase(others=others)
    _, phase = ood_phase(others=others, pixel_balance="study")
    nccm = [f"nccm_{n}" for n in range(6)]  # 8 + 7 + ... + 3 = 33 labelled pixels: the budget
    assert [c for c in plain.train_ids if c.startswith("nccm")] == nccm
    # chip 1 (16 labelled px, less `other` than chip 0), 0 (16), then 3 (15, less `other` than 2): 47 >= 33
    picked = [f"{s}_{n}" for s in ("eurocrops", "south_africa_crop_type") for n in (0, 1, 3)]
    assert sorted(phase.train_ids) == sorted([*picked, *nccm])
    assert ood_phase(others=others, pixel_balance="study")[1] == phase  # seeded
    manifest, _ = pool_tables()
    groups = [(s, [f"{s}_{n}" for n in range(6)]) for s in ("eurocrops", "nccm")]
    with pytest.raises(ParamsError, match="px_other"):
        balance_pixels(groups, manifest.drop("px_other"), 0)


def test_seeds_repeat_every_run_on_the_same_chips() -> None:
    """Each seed is one more run per cell, named `-s<seed>`, with the same phases; seeds must be distinct."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section(seeds=[0, 3]))
    plans = plan_entry(params, SOURCES, subsets, manifest, ("id", "ssl4eo", "cdl", 2))
    assert [(p.run_id, p.seed) for p in plans] == [("id-ssl4eo-cdl-k2-s0", 0), ("id-ssl4eo-cdl-k2-s3", 3)]
    assert plans[0].phases == plans[1].phases
    for bad in ([], [1, 1], [-1]):
        with pytest.raises(ValueError, match="seeds"):
            TrainParams.model_validate(train_section(seeds=bad))
