"""emdl.synth.presets: the scenes ``emdl synth --kind`` starts from."""

from __future__ import annotations

import pytest

from emdl.synth.presets import overlapping_bubbles, preset


def test_overlapping_bubbles_are_the_by_eye_bubbles_crowded_into_overlaps():
    (bubbles,) = preset("bubbles").populations
    (crowded,) = overlapping_bubbles().populations
    assert (crowded.median_diameter_nm, crowded.overlap) == (16.0, "volume")
    assert crowded.density == pytest.approx(4.5e22) and bubbles.density == pytest.approx(3e22)
    assert (bubbles.median_diameter_nm, bubbles.overlap) == (19.0, "projection")
    assert overlapping_bubbles().optics == preset("bubbles").optics
