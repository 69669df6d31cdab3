"""Study fidelity, item 4: South Africa and AgriFieldNet are read from the study's own 13-band chip folders.

The study profile names those folders (`sentinel2_sact_2017_subsampled`, `sentinel2_agrifieldnet_2021_subsampled`,
its `calculate_class_dist_SACT.py` / `calculate_class_dist_AgriFieldNet.py`), the demo profile keeps the products'
own per-field imagery, and docs/study-fidelity.md lists the setting. The study's chip names pair with the product's
fields as its scripts paired them (`file[5:]`: the name without its `<year>_`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.core.params import load_section
from curation.core.shared import SharedParams
from curation.inputs.chip_refs import CHIP_ID, YEAR_PREFIX
from curation.sources.agrifieldnet import ID_RE, LABEL_PREFIX, AgriFieldNet
from curation.sources.south_africa_crop_type import FIELD_RE, SouthAfricaCropType

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "profiles" / "study.yaml"
OURS = ROOT / "params.yaml"
DOC = ROOT / "docs" / "study-fidelity.md"
FOLDERS = {
    "south_africa_crop_type": "study/sentinel2_sact_2017_subsampled",
    "agrifieldnet": "study/sentinel2_agrifieldnet_2021_subsampled",
}
LISTS = {
    "south_africa_crop_type": "sentinel2_sact_2017_subsampled",
    "agrifieldnet": "sentinel2_agrifieldnet_2021_subsampled",
}


def _lists_folder() -> Path:
    for folder in (ROOT / "reference" / "seed-splits", ROOT.parent / "shared" / "reference" / "seed-splits"):
        if folder.is_dir():
            return folder
    pytest.skip("the study's chip lists are neither in reference/seed-splits nor in ../shared/reference/seed-splits")


@pytest.mark.parametrize("name", list(FOLDERS))
def test_the_study_profile_reads_the_studys_chip_folder(name: str) -> None:
    source = load_section(SharedParams, STUDY).sources[name]
    assert source.images == Path(FOLDERS[name])
    assert source.labels == Path("torchgeo") / name  # labels: the product as torchgeo downloads it
    assert source.month is None  # one image per chip: no month to choose (the per-field imagery's July: ours)


@pytest.mark.parametrize("name", list(FOLDERS))
def test_ours_keeps_the_products_own_imagery(name: str) -> None:
    source = load_section(SharedParams, OURS).sources[name]
    assert source.images is None


def test_the_fidelity_doc_lists_the_setting() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## 4. South Africa and AgriFieldNet imagery", 1)[1].split("\n## ", 1)[0]
    for name, folder in FOLDERS.items():
        assert f"`shared.sources.{name}.images`" in section and f"`{folder}`" in section
    assert "`shared.sources.south_africa_crop_type.month`" in section
    for cited in ("calculate_class_dist_SACT.py", "calculate_class_dist_AgriFieldNet.py", "utils/visualize.py"):
        assert cited in section
    assert "southafricacroptype_mask.py" in section and "agrifieldnet_mask.py" in section


@pytest.mark.parametrize("name", list(FOLDERS))
def test_the_studys_chip_names_name_a_field_of_the_product(name: str) -> None:
    """Every chip of the study's lists is a valid chip id whose name, less `<year>_`, is a field the reader knows."""
    year = {"south_africa_crop_type": SouthAfricaCropType, "agrifieldnet": AgriFieldNet}[name].info.years[0]
    names = set()
    for path in sorted(_lists_folder().rglob(f"{LISTS[name]}_*.csv")):
        names |= {line.strip() for line in path.read_text().splitlines() if line.strip().endswith(".tif")}
    assert len(names) >= 1000
    for file in sorted(names):
        stem = file.removesuffix(".tif")
        match = YEAR_PREFIX.match(stem)
        assert CHIP_ID.match(stem) and match and int(match.group(1)) == year, file
        field = stem[5:]
        if name == "south_africa_crop_type":
            assert FIELD_RE.match(field), file
        else:
            assert field.startswith(LABEL_PREFIX) and ID_RE.match(field.removeprefix(LABEL_PREFIX)), file
