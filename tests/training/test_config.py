"""The train params' model section: the encoder depth and the decoder widths agree, and the study's FPN is whole."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from training.config import TrainParams

from .conftest import train_section


def _model(**changes: Any) -> dict[str, Any]:  # noqa: ANN401 - any params value
    body = train_section()
    body["model"].update(changes)
    return body


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_one_decoder_width_per_encoder_stage(depth: int) -> None:
    params = TrainParams.model_validate(_model(encoder_depth=depth, decoder_channels=[16] * depth))
    assert params.model.encoder_depth == depth and len(params.model.decoder_channels) == depth


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encoder_depth": 3, "decoder_channels": [16] * 5}, "5 widths for encoder_depth 3"),
        ({"encoder_depth": 2, "decoder_channels": [16] * 2}, "greater than or equal to 3"),
        ({"encoder_depth": 6, "decoder_channels": [16] * 6}, "less than or equal to 5"),
        (
            {"encoder_depth": 3, "decoder_channels": [16] * 3, "satlas_architecture": "satlas_fpn"},
            "use encoder_depth 5",
        ),
    ],
)
def test_depth_and_widths_that_do_not_fit_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainParams.model_validate(_model(**changes))
