"""The harmonized classes as data (target.csv, loaded by `curation.core.legends.load_taxonomy`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Taxonomy:
    """The harmonized classes (target.csv): id 0 is `ignore`, skipped by loss and metrics."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    colors: tuple[str, ...]

    def id_of(self, name: str) -> int:
        """Class id of a class name."""
        return self.ids[self.names.index(name)]

    @property
    def size(self) -> int:
        """Length of a per-class count vector (ids are not required to be contiguous)."""
        return max(self.ids) + 1

    @property
    def names_by_id(self) -> list[str]:
        """Names indexed by class id, `class_<id>` for ids the taxonomy skips (confusion matrices index by id)."""
        names = [f"class_{i}" for i in range(self.size)]
        for class_id, name in zip(self.ids, self.names, strict=True):
            names[class_id] = name
        return names

    def counts_by_name(self, counts: npt.NDArray[np.int64]) -> dict[str, int]:
        """Turn a bincount over class ids into {class name: count}."""
        return {name: int(counts[i]) if i < len(counts) else 0 for i, name in zip(self.ids, self.names, strict=True)}
