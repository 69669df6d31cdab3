from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from curation.core.errors import UnmappedCodesError
from curation.core.legends import CrosswalkSet
from curation.core.remap import (
    UNMAPPED,
    Crosswalk,
    class_counts,
    distinct_codes,
    remap_codes,
    remap_raster,
    remap_vector,
)
from curation.core.taxonomy import Taxonomy

TAXONOMY = Taxonomy(ids=(0, 1, 2, 3), names=("ignore", "a", "b", "c"), colors=("#000000",) * 4)


def crosswalk(mapping: dict[int, int], match: str = "exact", digits: int | None = None) -> Crosswalk:
    codes = np.array(sorted(mapping), dtype=np.int64)
    return Crosswalk(
        source="test",
        path="legends/test.csv",
        set_name="toolkit",
        match=match,  # type: ignore[arg-type]
        digits=digits,
        codes=codes,
        names=tuple(f"code {c}" for c in codes.tolist()),
        targets=np.array([mapping[c] for c in codes.tolist()], dtype=np.uint8),
        taxonomy=TAXONOMY,
    )


def reference_remap(labels: np.ndarray, mapping: dict[int, int]) -> tuple[np.ndarray, dict[int, int]]:
    """The obvious per-pixel dictionary lookup the engine must agree with."""
    out = np.empty(labels.shape, dtype=np.uint8)
    missing: dict[int, int] = {}
    for index, code in np.ndenumerate(labels):
        if int(code) in mapping:
            out[index] = mapping[int(code)]
        else:
            out[index] = UNMAPPED
            missing[int(code)] = missing.get(int(code), 0) + 1
    return out, missing


mappings = st.dictionaries(st.integers(0, 255), st.integers(0, 3), min_size=1, max_size=40)
dtypes = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.int64])


@settings(max_examples=150, deadline=None)
@given(mapping=mappings, dtype=dtypes, data=st.data())
def test_lookup_remap_equals_reference_mapping(mapping: dict[int, int], dtype: type, data: st.DataObject) -> None:
    high = 255 if np.dtype(dtype) != np.uint16 else 400
    labels = data.draw(
        hnp.arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=2, max_side=24), elements=st.integers(0, high))
    )
    expected, missing = reference_remap(labels, mapping)
    cw = crosswalk(mapping)
    np.testing.assert_array_equal(remap_codes(labels, cw), expected)
    if missing:
        with pytest.raises(UnmappedCodesError) as info:
            remap_raster(labels, cw, where="window.tif")
        assert info.value.counts == missing
        assert "legends/test.csv" in str(info.value)
        assert "window.tif" in str(info.value)
    else:
        out = remap_raster(labels, cw)
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == np.uint8


@settings(max_examples=100, deadline=None)
@given(mapping=mappings, codes=st.lists(st.integers(0, 300), min_size=1, max_size=60))
def test_unmapped_code_is_always_reported_for_vectors(mapping: dict[int, int], codes: list[int]) -> None:
    frame = pl.DataFrame({"code": codes, "fid": list(range(len(codes)))})
    missing = {c: codes.count(c) for c in set(codes) if c not in mapping}
    cw = crosswalk(mapping)
    if missing:
        with pytest.raises(UnmappedCodesError) as info:
            remap_vector(frame, "code", cw)
        assert info.value.counts == missing
        assert info.value.unit == "features"
    else:
        out = remap_vector(frame, "code", cw)
        assert out.get_column("fid").to_list() == frame.get_column("fid").to_list()
        assert out.get_column("target_id").to_list() == [mapping[c] for c in codes]
        assert out.get_column("target").to_list() == [TAXONOMY.names[mapping[c]] for c in codes]


def test_vector_null_and_text_codes_are_unmapped() -> None:
    frame = pl.DataFrame({"code": ["1", None, "x", "1"]})
    with pytest.raises(UnmappedCodesError) as info:
        remap_vector(frame, "code", crosswalk({1: 1}))
    assert info.value.counts == {None: 1, "x": 1}
    assert "null (1 features)" in str(info.value)


def test_uint8_remap_uses_a_single_gather_table() -> None:
    cw = crosswalk({0: 0, 7: 2})
    labels = np.array([[7, 0], [0, 7]], dtype=np.uint8)
    assert cw.dense_lut(256).shape == (256,)
    np.testing.assert_array_equal(remap_raster(labels, cw), [[2, 0], [0, 2]])


def test_prefix_match_climbs_the_hierarchy_longest_first() -> None:
    cw = crosswalk({0: 0, 3300000000: 3, 3301010000: 2, 3301010100: 1}, match="prefix", digits=10)
    codes = np.array([3301010100, 3301010107, 3301010300, 3302000000, 3301999999, 0, 42, 3400000000])
    assert cw.resolve(codes).tolist() == [1, 1, 2, 3, 3, 0, UNMAPPED, UNMAPPED]
    labels = np.array([[3301010107, 0], [3302000000, 3301010100]], dtype=np.int64)
    np.testing.assert_array_equal(remap_raster(labels, cw), [[1, 0], [3, 1]])


def test_class_counts_include_ignore(toolkit: CrosswalkSet) -> None:
    harmonized = np.array([[0, 1, 1], [5, 5, 5]], dtype=np.uint8)
    assert class_counts(harmonized, toolkit.taxonomy) == {
        "ignore": 1,
        "maize": 2,
        "soybean": 0,
        "rice": 0,
        "wheat": 0,
        "other": 3,
    }


def test_real_eurocrops_codes_map_through_the_vector_join(toolkit: CrosswalkSet) -> None:
    frame = pl.DataFrame({"EC_hcat_c": [3301010101, 3301010600, 3301160000, 3302000000, 0]})
    out = remap_vector(frame, "EC_hcat_c", toolkit["eurocrops"])
    assert out.get_column("target").to_list() == ["wheat", "maize", "soybean", "other", "ignore"]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "int64", "uint32"])
@pytest.mark.parametrize("shape", [(0,), (1, 1), (64, 64), (3, 17)])
def test_distinct_codes_is_numpys_unique(dtype: str, shape: tuple[int, ...]) -> None:
    """The counting path (8/16-bit) and the sorting path give np.unique's values, inverse and counts exactly."""
    rng = np.random.default_rng(sum(shape) + len(dtype))
    high = min(int(np.iinfo(np.dtype(dtype)).max), 70_000)
    codes = rng.choice(rng.integers(0, high, size=9), size=shape).astype(dtype)
    values, inverse, counts = distinct_codes(codes)
    expected, expected_inverse, expected_counts = np.unique(codes.ravel(), return_inverse=True, return_counts=True)
    assert values.dtype == codes.dtype and np.array_equal(values, expected)
    assert np.array_equal(inverse, expected_inverse) and np.array_equal(counts, expected_counts)
    assert np.array_equal(values[inverse].reshape(shape), codes)
