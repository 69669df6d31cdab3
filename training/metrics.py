"""Segmentation metrics over a whole test set, from one accumulated confusion matrix.

Metrics are computed once from the summed confusion matrix of the entire test set rather than averaged over
batches or chips: a per-batch mean would weight a chip with ten maize pixels like one with ten thousand, and a
class absent from one batch would make that batch's mean undefined. Counting first and dividing last also makes
the results independent of batch size and of the order of the data.

Class ``ignore_index`` (0, nodata, in the harmonized taxonomy) is excluded from everything: pixels whose *target*
is ignore are dropped before counting. A pixel of a real class *predicted* as ignore is kept: it is a wrong
prediction (it counts in the total and as a false negative of its true class), since the model gets no credit for
abstaining. Our argmax never predicts class 0; the study's ran over every class (`evaluate.argmax_over_ignore`),
and its predictions of class 0 are scored here as described.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

SUMMARY_KEYS: tuple[str, ...] = ("oa", "aa", "aa_study", "f1_macro", "miou")
"""The scalar keys of :func:`scores`, in order; the per-class keys ``recall_<name>`` and ``iou_<name>`` follow."""

ConfusionLike = npt.NDArray[Any] | torch.Tensor
"""A [K, K] integer confusion matrix, rows = target class, columns = predicted class."""


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 0) -> torch.Tensor:
    """Count (target, predicted) class pairs, dropping pixels whose target is ``ignore_index``.

    One ``torch.bincount`` over ``target * K + pred`` on the tensors' own device, so a GPU evaluation loop adds a
    [K, K] matrix per batch instead of moving predictions to the host, and the cost does not grow with K. The
    per-batch matrices are summed over the test set and handed to :func:`scores`.

    Args:
        pred: Predicted class ids, any shape (e.g. [B, H, W]), integer dtype.
        target: Reference class ids, same shape as ``pred``, integer dtype.
        num_classes: K, the number of classes including the ignore class.
        ignore_index: Target value whose pixels are dropped. A prediction equal to it is *not* dropped: it lands
            in column ``ignore_index`` as a wrong prediction.

    Returns:
        A [K, K] int64 tensor on the inputs' device; rows = target class, columns = predicted class. All zeros
        when every target pixel is ignore (a legitimate batch; an empty *test set* is caught by :func:`scores`).

    Raises:
        ValueError: If the shapes differ, ``num_classes`` < 1, or a kept pixel has a class id outside [0, K).
            Out-of-range ids would otherwise be binned into the wrong cell (or change the matrix's size) silently.
        TypeError: If either tensor is not of an integer dtype (float or bool class maps are a bug upstream).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    for name, tensor in (("pred", pred), ("target", target)):
        if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class ids, got dtype {tensor.dtype}")
    # int64 before any arithmetic: target * K overflows a uint8 class map as soon as K > 16.
    flat_target = target.reshape(-1).long()
    flat_pred = pred.reshape(-1).long()
    keep = flat_target != ignore_index
    flat_target = flat_target[keep]
    flat_pred = flat_pred[keep]
    out_of_range = (flat_target < 0) | (flat_target >= num_classes) | (flat_pred < 0) | (flat_pred >= num_classes)
    if bool(out_of_range.any()):
        raise ValueError(
            f"class ids must lie in [0, {num_classes}) outside ignored pixels; found target ids "
            f"{sorted(set(flat_target[out_of_range].tolist()))} and predicted ids "
            f"{sorted(set(flat_pred[out_of_range].tolist()))} among the offending pixels"
        )
    counts = torch.bincount(flat_target * num_classes + flat_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def chip_confusions(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 0) -> torch.Tensor:
    """One confusion matrix per chip of a batch, [B, K, K]: the bootstrap over test chips resamples these.

    Same rules and checks as :func:`confusion_matrix` (which validates the batch); their sum over the batch is
    the batch's confusion matrix.
    """
    confusion_matrix(pred, target, num_classes, ignore_index)  # shapes, dtypes and class ids, as for a batch
    batch, cells = pred.shape[0], num_classes * num_classes
    chip = torch.arange(batch, device=pred.device).view(-1, *([1] * (pred.dim() - 1))).expand_as(pred)
    keep = target != ignore_index
    flat = chip[keep] * cells + target[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(flat, minlength=batch * cells).reshape(batch, num_classes, num_classes)


def _counts(confusion: ConfusionLike, class_names: Sequence[str]) -> npt.NDArray[np.int64]:
    """Validate a confusion matrix against the class names and return it as an int64 numpy copy.

    Integer counts are required: pixel totals of a test set exceed 2**24, beyond which float32 stops counting
    exactly, so a float matrix is a sign of lossy accumulation upstream.
    """
    array = confusion.detach().cpu().numpy() if isinstance(confusion, torch.Tensor) else np.asarray(confusion)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"confusion matrix must be square [K, K], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"confusion matrix must hold integer pixel counts, got dtype {array.dtype}")
    if len(class_names) != array.shape[0]:
        raise ValueError(
            f"{len(class_names)} class names for a {array.shape[0]}x{array.shape[0]} confusion matrix; "
            "class_names must list every class id in order, the ignore class included"
        )
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class names must be unique (they become result keys), got {list(class_names)}")
    counts = array.astype(np.int64)
    if (counts < 0).any():
        raise ValueError("confusion matrix has negative counts")
    return counts


def _ratio(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Elementwise num / den with NaN where den == 0 (undefined, not zero)."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def scores(confusion: ConfusionLike, class_names: Sequence[str], ignore_index: int = 0) -> dict[str, float]:
    """Whole-test-set metrics from an accumulated confusion matrix, as a flat dict of floats.

    Keys, in order:

    - ``oa``: overall accuracy, trace / total over pixels whose target is a real class. Predictions of the ignore
      class count in the total but never in the trace.
    - ``aa``: the toolkit's average accuracy, the mean recall over the real classes *present in the test set*
      (row sum > 0). A class with no reference pixels has no defined recall and is left out rather than scored 0.
    - ``aa_study``: average accuracy exactly as the study computed it, torchmetrics 1.4
      ``MulticlassAccuracy(num_classes=K, average="macro", ignore_index=0)``: recall with 0/0 -> 0, averaged over
      *all K* classes (the ignore class included) that have tp + fp + fn > 0. So a class absent from the test set
      but predicted scores 0, and so does the ignore class whenever the model predicts it at a valid pixel. Kept
      separately from ``aa`` so that the study's numbers can be reproduced, not because it is the better measure.
      torchmetrics 1.9 still computes it this way (checked against it in the tests).
    - ``f1_macro`` and ``miou``: mean F1 and mean IoU over the real classes with tp + fp + fn > 0 (present in the
      target or predicted), like mmsegmentation's NaN-ignoring mean: a class neither present nor predicted is
      undefined and skipped, a class predicted but absent scores 0.
    - ``recall_<name>`` for every real class: NaN when the class is absent from the test set.
    - ``iou_<name>`` for every real class: NaN when tp + fp + fn == 0.

    Per-class NaNs are kept, not filled with 0: "undefined" and "always wrong" are different findings, and a
    results table should show the difference. Pixels in row ``ignore_index`` (target = ignore) are dropped, as in
    :func:`confusion_matrix`, should the matrix come from elsewhere.

    Args:
        confusion: [K, K] integer counts, rows = target class, columns = predicted class (numpy or torch).
        class_names: The K class names in id order, the ignore class included; real class names become key
            suffixes.
        ignore_index: The ignore class id; excluded from every metric but ``aa_study``, see above.

    Returns:
        The flat dict of floats described above: :data:`SUMMARY_KEYS`, then ``recall_<name>`` for each real class,
        then ``iou_<name>`` for each real class.

    Raises:
        ValueError: If the matrix has no valid pixel at all (an empty test set is a bug upstream: every metric would
            be 0/0), is not square, has negative counts, or does not match ``class_names``.
        TypeError: If the matrix does not hold integer counts.
    """
    counts = _counts(confusion, class_names)
    num_classes = counts.shape[0]
    if 0 <= ignore_index < num_classes:
        counts[ignore_index, :] = 0
    total = int(counts.sum())
    if total == 0:
        raise ValueError(
            "confusion matrix has no valid pixel at all (every target pixel is ignore, or nothing was counted): "
            "the test set is empty, which is a bug upstream"
        )
    tp = np.diag(counts).copy()
    fn = counts.sum(axis=1) - tp
    fp = counts.sum(axis=0) - tp
    seen = tp + fp + fn
    real = np.array([i != ignore_index for i in range(num_classes)])

    recall = _ratio(tp, tp + fn)
    iou = _ratio(tp, seen)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)

    # torchmetrics' macro: safe-divided recall (0/0 -> 0), weight 1 for every class with tp + fp + fn > 0.
    study_classes = seen > 0
    aa_study = float(np.nan_to_num(recall[study_classes], nan=0.0).mean())

    result = {
        "oa": float(tp.sum()) / total,
        "aa": float(np.nanmean(recall[real])),  # total > 0 with row ignore zeroed: some real class is present
        "aa_study": aa_study,
        "f1_macro": float(np.nanmean(f1[real])),
        "miou": float(np.nanmean(iou[real])),
    }
    real_ids = np.flatnonzero(real).tolist()
    result.update({f"recall_{class_names[i]}": float(recall[i]) for i in real_ids})
    result.update({f"iou_{class_names[i]}": float(iou[i]) for i in real_ids})
    return result


def confusion_rows(confusion: ConfusionLike, class_names: Sequence[str]) -> list[dict[str, object]]:
    """Tidy rows ``{target_class, predicted_class, pixels}`` for every non-zero cell, for a results table.

    Long format with names rather than ids, so that tables from runs on different taxonomies or subsets can be
    concatenated and filtered without carrying the id-to-name mapping along. Zero cells are left out (a K x K
    matrix is mostly zeros); rows come in target-then-predicted id order.

    Args:
        confusion: [K, K] integer counts, rows = target class, columns = predicted class (numpy or torch).
        class_names: The K class names in id order, the ignore class included.

    Returns:
        One dict per non-zero cell; ``pixels`` is a Python int.

    Raises:
        ValueError: If the matrix is not square, has negative counts, or does not match ``class_names``.
        TypeError: If the matrix does not hold integer counts.
    """
    counts = _counts(confusion, class_names)
    rows, cols = np.nonzero(counts)
    return [
        {"target_class": class_names[t], "predicted_class": class_names[p], "pixels": int(counts[t, p])}
        for t, p in zip(rows.tolist(), cols.tolist(), strict=True)
    ]
