"""The selection algorithm on arrays: geometry, the spatial hash against brute force, stratification, blocks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from curation.subsets import splits


def square(x: float, y: float, side: float = 640.0) -> npt.NDArray[np.float64]:
    return np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]], dtype=np.float64)


def quads(*corners: tuple[float, float]) -> npt.NDArray[np.float64]:
    return np.stack([square(x, y) for x, y in corners])


def rotated(
    centres: npt.NDArray[np.float64], sides: npt.NDArray[np.float64], angles: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x, y = unit[None, :, 0] * sides[:, None], unit[None, :, 1] * sides[:, None]
    return np.stack([centres[:, :1] + cos * x - sin * y, centres[:, 1:] + sin * x + cos * y], axis=-1)


def brute_near(pool: npt.NDArray[np.float64], test: npt.NDArray[np.float64], buffer_m: float) -> npt.NDArray[np.bool_]:
    i, j = np.repeat(np.arange(len(pool)), len(test)), np.tile(np.arange(len(test)), len(pool))
    return splits.too_close(pool[i], test[j], buffer_m).reshape(len(pool), len(test)).any(axis=1)


def test_pair_geometry_distances_touching_and_overlap() -> None:
    a = quads((0, 0), (0, 0), (0, 0), (0, 0), (0, 0))
    b = quads((1280, 0), (640, 0), (320, 320), (1000, 1000), (0, 0))
    distance, overlap = splits.pair_geometry(a, b)
    assert distance[0] == 640.0 and not overlap[0]  # one chip apart, exactly
    assert distance[1] == 0.0 and not overlap[1]  # sharing an edge: touching, no area
    assert overlap[2] and overlap[4] and distance[2] == 0.0
    assert distance[3] == pytest.approx(np.hypot(360, 360))
    assert splits.too_close(a, b, 640.0).tolist() == [False, True, True, True, True]  # equal to the buffer is allowed
    assert splits.too_close(a, b, 0.0).tolist() == [False, False, True, False, True]


def test_rotated_neighbours_touch_though_their_bounding_boxes_overlap() -> None:
    angle = np.radians(16.0)
    a = rotated(np.array([[0.0, 0.0]]), np.array([640.0]), np.array([angle]))
    b = a + (a[:, 1] - a[:, 0])  # shifted by one edge: the neighbour to the east, sharing an edge
    distance, overlap = splits.pair_geometry(a, b)
    assert not overlap[0] and distance[0] == pytest.approx(0.0, abs=1e-6)
    assert splits.box_close(splits.bounds(a), splits.bounds(b), 0.0)[0]  # the boxes would call it an overlap


@pytest.mark.parametrize("seed", range(3))
def test_the_spatial_hash_finds_exactly_what_brute_force_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, t = 800, 30
    sides = rng.uniform(300, 900, size=n + t)
    shapes = rotated(rng.uniform(-12_000, 12_000, size=(n + t, 2)), sides, rng.uniform(-0.3, 0.3, size=n + t))
    pool, test = shapes[:n], shapes[n:]
    for buffer_m in (0.0, 640.0, 2500.0):
        found = splits.near(pool, test, buffer_m)
        assert np.array_equal(found, brute_near(pool, test, buffer_m))
    assert 0 < splits.near(pool, test, 640.0).sum() < n


def test_near_handles_empty_inputs() -> None:
    one = quads((0, 0))
    assert splits.near(one[:0], one, 10.0).shape == (0,)
    assert splits.near(one, one[:0], 10.0).tolist() == [False]


def test_blocks_are_the_cells_holding_the_footprint_centres() -> None:
    footprints = quads((0, 0), (640, 0), (1700, 0), (0, 1950), (-700, 0))  # centres x 320, 960, 2020, 320, -380
    blocks = splits.block_index(splits.bounds(footprints), 1920.0)
    assert blocks.tolist() == [1, 1, 3, 2, 0]  # cells (0,0) (0,0) (1,0) (0,1) (-1,0), numbered in (x, y) order


def test_stratified_order_covers_rare_classes_first_then_shuffles() -> None:
    rng = np.random.default_rng(0)
    presence = np.zeros((200, 4), dtype=bool)
    presence[:, 0] = True
    presence[rng.choice(200, 30, replace=False), 1] = True
    presence[17, 2] = True  # one chip holds class 2
    order, cover = splits.stratified_order(presence, splits.rng_for(0, "cdl"))
    assert sorted(order.tolist()) == list(range(200)) and order[0] == 17
    assert cover <= 3 and presence[order[:cover]].any(axis=0).tolist() == [True, True, True, False]
    again, _ = splits.stratified_order(presence, splits.rng_for(0, "cdl"))
    other, _ = splits.stratified_order(presence, splits.rng_for(0, "nccm"))
    assert np.array_equal(order, again) and not np.array_equal(order, other)


def test_contains_is_inclusive_at_the_min_share() -> None:
    counts = np.array([[41, 40, 39]], dtype=np.int64)
    assert splits.contains(counts, np.array([4000]), 0.01).tolist() == [[True, True, False]]


def test_select_draws_test_from_blocks_and_buffers_the_pool() -> None:
    rng = np.random.default_rng(5)
    cells = rng.choice(40 * 40, size=900, replace=False)
    footprints = np.stack([square(640.0 * (c % 40), 640.0 * (c // 40)) for c in cells])
    presence = rng.random((900, 5)) < 0.3
    sel = splits.select(footprints, presence, 25, 1920.0, 640.0, splits.rng_for(1, "cdl"))
    assert len(sel.test) == 25 and set(sel.test.tolist()) <= set(sel.test_block_chips.tolist())
    assert not set(sel.train_order.tolist()) & set(sel.test_block_chips.tolist())
    assert len(sel.train_order) + sel.excluded + len(sel.test_block_chips) == 900
    found = splits.audit(footprints[sel.train_order], footprints[sel.test], 640.0)
    assert found.offending == 0 and found.overlaps == 0 and found.min_distance is not None
    assert found.min_distance >= 640.0
    every = splits.audit(footprints[sel.train_order], footprints[sel.test], 1e9)
    assert every.offending == len(sel.train_order) * 25 and len(every.worst) == 5
    assert [w[2] for w in every.worst] == sorted(w[2] for w in every.worst)


def test_a_test_set_larger_than_the_source_takes_every_block() -> None:
    footprints = quads((0, 0), (5000, 0), (10_000, 0))
    sel = splits.select(footprints, np.ones((3, 2), dtype=bool), 10, 1920.0, 0.0, splits.rng_for(0, "x"))
    assert sel.test_blocks == 3 and len(sel.test) == 3 and len(sel.train_order) == 0


@pytest.mark.parametrize("buffer_m", [0.0, 400.0])
def test_the_audit_agrees_with_every_pair_compared_exactly(buffer_m: float) -> None:
    rng = np.random.default_rng(11)
    shapes = rotated(rng.uniform(-6000, 6000, size=(330, 2)), rng.uniform(300, 700, 330), rng.uniform(-0.3, 0.3, 330))
    train, test = shapes[:300], shapes[300:]
    i, j = np.repeat(np.arange(300), 30), np.tile(np.arange(30), 300)
    distance, overlap = splits.pair_geometry(train[i], test[j])
    found = splits.audit(train, test, buffer_m)
    assert found.overlaps == int(overlap.sum()) > 0
    assert found.offending == int((overlap | (distance < buffer_m)).sum())
    assert found.min_distance == distance.min() == 0.0
    apart = splits.audit(train[distance.reshape(300, 30).min(axis=1) > 0], test, buffer_m)
    far = distance.reshape(300, 30)[distance.reshape(300, 30).min(axis=1) > 0]
    assert apart.overlaps == 0 and apart.min_distance == far.min() > 0
    assert splits.audit(train[:0], test, buffer_m).min_distance is None
