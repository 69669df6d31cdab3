"""Whole-test-set segmentation metrics: hand-computed values, the ignore class, and torchmetrics' macro AA."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from training.metrics import SUMMARY_KEYS, confusion_matrix, confusion_rows, scores

NAMES = ("ignore", "maize", "soybean", "rice", "wheat")

# rows = target, columns = predicted; ids 0 ignore, 1 maize, 2 soybean, 3 rice, 4 wheat
HAND = np.array(
    [
        [0, 0, 0, 0, 0],  # ignore: dropped by construction
        [2, 6, 1, 1, 0],  # maize: 10 px, 2 predicted as ignore, 1 as rice
        [1, 2, 5, 0, 0],  # soybean: 8 px, 1 predicted as ignore
        [0, 0, 0, 0, 0],  # rice: absent from the test set, but predicted once (the maize pixel above)
        [0, 0, 0, 0, 0],  # wheat: absent and never predicted
    ],
    dtype=np.int64,
)
# column sums: ignore 3, maize 8, soybean 6, rice 1, wheat 0; total 18; trace 6 + 5 = 11
#            tp  fn  fp  tp+fp+fn
# ignore      0   0   3   3
# maize       6   4   2  12
# soybean     5   3   1   9
# rice        0   0   1   1
# wheat       0   0   0   0
OA = 11 / 18
RECALL_MAIZE = 6 / 10
RECALL_SOYBEAN = 5 / 8
AA = (6 / 10 + 5 / 8) / 2  # rice and wheat absent -> left out: 0.6125
# torchmetrics macro: classes with tp+fp+fn > 0 are ignore, maize, soybean, rice, recalls 0, .6, .625, 0 (0/0 -> 0)
AA_STUDY = (0 + 6 / 10 + 5 / 8 + 0) / 4  # 0.30625
IOU_MAIZE = 6 / (6 + 2 + 4)  # 0.5
IOU_SOYBEAN = 5 / (5 + 1 + 3)  # 5/9
IOU_RICE = 0 / (0 + 1 + 0)  # predicted but absent: 0, not NaN
MIOU = (IOU_MAIZE + IOU_SOYBEAN + IOU_RICE) / 3  # wheat (0/0) skipped: 19/54
F1_MAIZE = 2 * 6 / (2 * 6 + 2 + 4)  # 12/18
F1_SOYBEAN = 2 * 5 / (2 * 5 + 1 + 3)  # 10/14
F1_MACRO = (F1_MAIZE + F1_SOYBEAN + 0) / 3  # rice 0, wheat skipped: 29/63


def pixels_of(confusion: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand a confusion matrix back into (pred, target) pixel vectors, in a shuffled order."""
    target_ids, pred_ids = np.nonzero(confusion)
    reps = confusion[target_ids, pred_ids]
    order = np.random.default_rng(0).permutation(int(reps.sum()))
    target = torch.from_numpy(np.repeat(target_ids, reps)[order])
    pred = torch.from_numpy(np.repeat(pred_ids, reps)[order])
    return pred, target


def test_hand_computed_scores() -> None:
    result = scores(HAND, NAMES)
    assert list(result)[: len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert result["oa"] == pytest.approx(OA)
    assert result["aa"] == pytest.approx(AA)
    assert result["aa"] == pytest.approx(0.6125)
    assert result["aa_study"] == pytest.approx(AA_STUDY)
    assert result["aa_study"] == pytest.approx(0.30625)
    assert result["f1_macro"] == pytest.approx(29 / 63)
    assert result["f1_macro"] == pytest.approx(F1_MACRO)
    assert result["miou"] == pytest.approx(19 / 54)
    assert result["miou"] == pytest.approx(MIOU)
    assert result["recall_maize"] == pytest.approx(RECALL_MAIZE)
    assert result["recall_soybean"] == pytest.approx(RECALL_SOYBEAN)
    assert result["iou_maize"] == pytest.approx(IOU_MAIZE)
    assert result["iou_soybean"] == pytest.approx(IOU_SOYBEAN)
    assert result["iou_rice"] == pytest.approx(0.0)


def test_absent_classes_are_nan_not_zero() -> None:
    result = scores(HAND, NAMES)
    assert math.isnan(result["recall_rice"])  # absent from the test set, though predicted
    assert math.isnan(result["recall_wheat"])
    assert math.isnan(result["iou_wheat"])  # tp + fp + fn == 0
    assert not math.isnan(result["iou_rice"])  # predicted once: IoU 0, defined


def test_keys_cover_every_real_class_and_never_the_ignore_class() -> None:
    result = scores(HAND, NAMES)
    real = NAMES[1:]
    assert set(result) == set(SUMMARY_KEYS) | {f"recall_{n}" for n in real} | {f"iou_{n}" for n in real}
    assert all(isinstance(v, float) for v in result.values())


def test_prediction_of_ignore_is_wrong_and_counts_in_the_total() -> None:
    # maize 4 px: 3 right, 1 predicted as ignore. total 4, trace 3.
    confusion = np.zeros((3, 3), dtype=np.int64)
    confusion[1, 1] = 3
    confusion[1, 0] = 1
    confusion[2, 2] = 2  # soybean 2 px, both right
    result = scores(confusion, ("ignore", "maize", "soybean"))
    assert result["oa"] == pytest.approx(5 / 6)
    assert result["recall_maize"] == pytest.approx(3 / 4)
    assert result["iou_maize"] == pytest.approx(3 / 4)  # 3 / (3 + 0 fp + 1 fn)
    assert result["aa"] == pytest.approx((3 / 4 + 1) / 2)
    # study: the ignore class has fp = 1, so it enters the mean with recall 0
    assert result["aa_study"] == pytest.approx((0 + 3 / 4 + 1) / 3)


def test_target_ignore_row_is_dropped_even_if_filled() -> None:
    filled = HAND.copy()
    filled[0] = [9, 9, 9, 9, 9]  # a matrix counted without masking: target-ignore pixels must not count
    assert scores(filled, NAMES) == pytest.approx(scores(HAND, NAMES), nan_ok=True)


def test_torch_and_numpy_inputs_agree() -> None:
    from_torch = scores(torch.from_numpy(HAND), NAMES)
    assert from_torch == pytest.approx(scores(HAND, NAMES), nan_ok=True)


def test_empty_confusion_raises_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="no valid pixel"):
        scores(np.zeros((5, 5), dtype=np.int64), NAMES)
    all_ignore = confusion_matrix(torch.tensor([1, 2, 3]), torch.zeros(3, dtype=torch.long), num_classes=5)
    with pytest.raises(ValueError, match="test set is empty"):
        scores(all_ignore, NAMES)


def test_scores_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match="class names"):
        scores(HAND, NAMES[:-1])
    with pytest.raises(ValueError, match="unique"):
        scores(HAND, ("ignore", "maize", "maize", "rice", "wheat"))
    with pytest.raises(ValueError, match="square"):
        scores(HAND[:, :4], NAMES)
    with pytest.raises(TypeError, match="integer"):
        scores(HAND.astype(np.float32), NAMES)
    with pytest.raises(ValueError, match="negative"):
        scores(HAND - 1, NAMES)


def test_confusion_matrix_drops_ignore_pixels_and_matches_a_hand_count() -> None:
    target = torch.tensor([[0, 1, 1], [2, 2, 0]])
    pred = torch.tensor([[1, 1, 2], [2, 0, 3]])
    # kept (target, pred) pairs: (1,1) (1,2) (2,2) (2,0); the pixels with target 0 (preds 1 and 3) are dropped
    expected = torch.zeros(4, 4, dtype=torch.int64)
    expected[1, 1] = 1
    expected[1, 2] = 1
    expected[2, 2] = 1
    expected[2, 0] = 1
    result = confusion_matrix(pred, target, num_classes=4)
    assert result.dtype == torch.int64
    assert torch.equal(result, expected)
    assert int(result.sum()) == 4  # 6 pixels - 2 ignore


def test_confusion_matrix_on_a_batch_matches_a_pixel_count() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (3, 8, 8), generator=generator)
    pred = torch.randint(0, 6, (3, 8, 8), generator=generator)
    pairs = Counter((t, p) for t, p in zip(target.flatten().tolist(), pred.flatten().tolist(), strict=True) if t != 0)
    expected = torch.zeros(6, 6, dtype=torch.int64)
    for (t, p), n in pairs.items():
        expected[t, p] = n
    result = confusion_matrix(pred, target, num_classes=6)
    assert torch.equal(result, expected)
    assert int(result.sum()) == int((target != 0).sum())
    assert int(result[0].sum()) == 0
    # summing per-chip matrices gives the batch matrix (what an evaluation loop does)
    per_chip = sum((confusion_matrix(pred[i], target[i], num_classes=6) for i in range(3)), torch.zeros(6, 6))
    assert torch.equal(per_chip.long(), result)


def test_confusion_matrix_round_trips_the_hand_matrix() -> None:
    pred, target = pixels_of(HAND)
    assert np.array_equal(confusion_matrix(pred, target, num_classes=5).numpy(), HAND)


def test_confusion_matrix_casts_before_arithmetic() -> None:
    # uint8 class maps: 19 * 20 + 19 = 399 would wrap around in uint8
    target = torch.tensor([19, 19, 1], dtype=torch.uint8)
    pred = torch.tensor([19, 18, 1], dtype=torch.uint8)
    result = confusion_matrix(pred, target, num_classes=20)
    assert int(result[19, 19]) == 1
    assert int(result[19, 18]) == 1
    assert int(result[1, 1]) == 1
    assert int(result.sum()) == 3


def test_confusion_matrix_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), num_classes=3)
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(torch.zeros(3), torch.zeros(3, dtype=torch.long), num_classes=3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(torch.tensor([1, 3]), torch.tensor([1, 2]), num_classes=3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(torch.tensor([1, 1]), torch.tensor([1, -1]), num_classes=3)
    # an out-of-range prediction at an ignored pixel is dropped with the pixel
    assert int(confusion_matrix(torch.tensor([7, 1]), torch.tensor([0, 1]), num_classes=3).sum()) == 1


def test_confusion_rows_lists_non_zero_cells_by_name() -> None:
    assert confusion_rows(HAND, NAMES) == [
        {"target_class": "maize", "predicted_class": "ignore", "pixels": 2},
        {"target_class": "maize", "predicted_class": "maize", "pixels": 6},
        {"target_class": "maize", "predicted_class": "soybean", "pixels": 1},
        {"target_class": "maize", "predicted_class": "rice", "pixels": 1},
        {"target_class": "soybean", "predicted_class": "ignore", "pixels": 1},
        {"target_class": "soybean", "predicted_class": "maize", "pixels": 2},
        {"target_class": "soybean", "predicted_class": "soybean", "pixels": 5},
    ]
    assert confusion_rows(torch.from_numpy(HAND), NAMES) == confusion_rows(HAND, NAMES)


# torchmetrics 1.9's MulticlassAccuracy(average="macro", ignore_index=0) still follows the 1.4 rule that aa_study
# reproduces: target-ignore pixels removed, then a [K, K] bincount; recall safe-divided (0/0 -> 0); a class weighted
# 0 only when tp + fp + fn == 0 (utilities/compute.py: _adjust_weights_safe_divide). So aa_study is checked against
# the library itself here. Importing torchmetrics costs several seconds (it pulls in torchvision).


def test_aa_study_matches_torchmetrics_on_the_hand_matrix() -> None:
    classification = pytest.importorskip("torchmetrics.classification")
    pred, target = pixels_of(HAND)
    # the ignore-target pixels torchmetrics must drop: add some, predicted as every class
    pred = torch.cat([pred, torch.arange(5)])
    target = torch.cat([target, torch.zeros(5, dtype=torch.long)])
    macro = classification.MulticlassAccuracy(num_classes=5, average="macro", ignore_index=0)
    micro = classification.MulticlassAccuracy(num_classes=5, average="micro", ignore_index=0)
    assert float(macro(pred, target)) == pytest.approx(AA_STUDY)
    assert float(micro(pred, target)) == pytest.approx(OA)
    assert scores(confusion_matrix(pred, target, num_classes=5), NAMES)["aa_study"] == pytest.approx(AA_STUDY)


@pytest.mark.parametrize("seed", range(5))
def test_aa_study_and_oa_match_torchmetrics_on_random_maps(seed: int) -> None:
    classification = pytest.importorskip("torchmetrics.classification")
    generator = torch.Generator().manual_seed(seed)
    num_classes = 6
    target = torch.randint(0, num_classes, (4, 16, 16), generator=generator)
    pred = torch.randint(0, num_classes, (4, 16, 16), generator=generator)
    target[target == 3] = 1  # class 3 absent from the test set ...
    pred[:, 0, 0] = 3  # ... but predicted: torchmetrics scores it 0
    target[target == 5] = 2  # class 5 absent ...
    pred[pred == 5] = 4  # ... and never predicted: weight 0
    pred[:, 1, :2] = 0  # and some valid pixels predicted as ignore
    target[:, 1, :2] = torch.tensor([1, 2])
    names = ("ignore", "maize", "soybean", "rice", "wheat", "other")
    result = scores(confusion_matrix(pred, target, num_classes), names)
    macro = classification.MulticlassAccuracy(num_classes=num_classes, average="macro", ignore_index=0)
    micro = classification.MulticlassAccuracy(num_classes=num_classes, average="micro", ignore_index=0)
    assert result["aa_study"] == pytest.approx(float(macro(pred, target)), abs=1e-6)
    assert result["oa"] == pytest.approx(float(micro(pred, target)), abs=1e-6)
    assert result["aa"] > result["aa_study"]  # the toolkit's AA leaves out rice and the ignore class
    assert math.isnan(result["recall_rice"])
    assert math.isnan(result["iou_other"])
