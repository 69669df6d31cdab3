from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from curation.core.errors import ParamsError
from curation.core.params import all_sections, check_all, load_section
from curation.core.shared import SharedParams
from curation.crosswalks.config import CrosswalksParams

ROOT = Path(__file__).resolve().parents[2]

GOOD = (ROOT / "params.yaml").read_text()
PROFILES = sorted((ROOT / "profiles").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_project_params_are_valid() -> None:
    sections = check_all(ROOT / "params.yaml")
    assert set(sections) == set(all_sections())


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profiles_are_valid(profile: Path) -> None:
    assert set(check_all(profile)) == set(all_sections())


def test_nested_keys_are_checked_with_suggestions(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      label_crs: EPSG:5070", "      label_cr: EPSG:5070"))
    with pytest.raises(ParamsError, match=r"'shared\.sources\.cdl\.label_cr'.*did you mean 'label_crs'"):
        load_section(SharedParams, path)
    with pytest.raises(ParamsError, match=r"unknown source 'cdll'.*did you mean 'cdl'"):
        load_section(SharedParams, write(tmp_path, GOOD.replace("    cdl: ", "    cdll: ")))
    with pytest.raises(ParamsError, match="unknown CRS"):
        load_section(SharedParams, write(tmp_path, GOOD.replace("label_crs: EPSG:5070", "label_crs: EPSG:99999")))
    with pytest.raises(ParamsError, match="13 Sentinel-2 bands"):
        load_section(SharedParams, write(tmp_path, GOOD.replace("B11, B12, B8A]", "B11, B12]")))


def test_section_is_typed_and_frozen(tmp_path: Path) -> None:
    shared = load_section(SharedParams, write(tmp_path, GOOD))
    assert shared.legends_dir == Path("curation/legends")
    assert shared.crosswalk_set == "toolkit"
    with pytest.raises(ValidationError):
        shared.crosswalk_set = "paper"  # type: ignore[misc]
    assert load_section(CrosswalksParams, write(tmp_path, GOOD)).sets == ("toolkit", "paper")


def test_misspelled_key_names_the_closest_valid_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("crosswalk_set:", "crosswalk_sett:"))
    with pytest.raises(ParamsError) as info:
        load_section(SharedParams, path)
    message = str(info.value)
    assert "'shared.crosswalk_sett'" in message
    assert "did you mean 'crosswalk_set'" in message
    assert str(path) in message


def test_misspelled_section_names_the_closest_section(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "crosswalk:\n  sets: [toolkit]\n")
    with pytest.raises(ParamsError, match="did you mean 'crosswalks'"):
        load_section(SharedParams, path)
    assert load_section(SharedParams, path, whole_file=False).crosswalk_set == "toolkit"  # the app's reading
    with pytest.raises(ParamsError, match="unknown key"):
        typo = write(tmp_path, GOOD.replace("  crosswalk_set:", "  crosswalk_sett:"))
        load_section(SharedParams, typo, whole_file=False)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("crosswalk_set:", "crosswalk_sett:").replace("  sets:", "  setz:")
    with pytest.raises(ParamsError) as info:
        check_all(write(tmp_path, text))
    assert len(info.value.problems) == 2
    assert "did you mean 'sets'" in str(info.value)


def test_missing_key_and_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"'shared\.crosswalk_set'"):
        load_section(SharedParams, write(tmp_path, "shared:\n  legends_dir: x\n"))
    with pytest.raises(ParamsError, match="at least one"):
        load_section(CrosswalksParams, write(tmp_path, GOOD.replace("[toolkit, paper]", "[]")))
    with pytest.raises(ParamsError, match="missing section: 'crosswalks'"):
        load_section(CrosswalksParams, write(tmp_path, "shared:\n  legends_dir: x\n  crosswalk_set: toolkit\n"))


def test_unreadable_params(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="no such file"):
        load_section(SharedParams, tmp_path / "absent.yaml")
    with pytest.raises(ParamsError, match="valid YAML"):
        load_section(SharedParams, write(tmp_path, "shared: [unclosed\n"))
    with pytest.raises(ParamsError, match="top level is a mapping"):
        load_section(SharedParams, write(tmp_path, "- a\n- b\n"))
