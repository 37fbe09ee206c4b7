"""Shareable-link values: good ones round-trip, bad ones fall back to the default."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from core.params import Param, dump, parse

CONF = Param(default=0.25, lo=0.05, hi=0.95, step=0.05)
SCENE = Param(default=1, kind=int, lo=0, hi=9999)
IMG = Param(default="astronaut", kind=str, choices=("astronaut", "coffee"))
FLAG = Param(default=False, kind=bool)


@pytest.mark.parametrize(
    "raw, spec, value, bad",
    [
        (None, CONF, 0.25, False),
        ("0.5", CONF, 0.5, False),
        ("0.52", CONF, 0.5, False),  # snapped to the slider's step
        ("2", CONF, 0.25, True),
        ("-1", CONF, 0.25, True),
        ("nan", CONF, 0.25, True),
        ("inf", CONF, 0.25, True),
        ("banana", CONF, 0.25, True),
        ("", CONF, 0.25, True),
        ("42", SCENE, 42, False),
        ("4.2", SCENE, 1, True),
        ("99999999999999999999", SCENE, 1, True),
        ("coffee", IMG, "coffee", False),
        ("<script>", IMG, "astronaut", True),
        ("true", FLAG, True, False),
        ("maybe", FLAG, False, True),
    ],
)
def test_parse_table(raw, spec, value, bad):
    got, notice = parse(raw, spec)
    assert got == value and (notice is not None) == bad


def test_bad_default_is_a_programming_error():
    with pytest.raises(ValueError):
        Param(default=2.0, lo=0, hi=1)


@pytest.mark.parametrize("spec, value", [(CONF, 0.35), (SCENE, 7), (IMG, "coffee"), (FLAG, True)])
def test_dump_parse_round_trip(spec, value):
    assert parse(dump(value, spec), spec) == (value, None)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.none(), st.text(max_size=300)), which=st.sampled_from([CONF, SCENE, IMG, FLAG]))
def test_parse_never_raises_and_always_obeys_the_spec(raw, which):
    value, notice = parse(raw, which)
    if which.choices is not None:
        assert value in which.choices
    if which.kind in (int, float):
        assert math.isfinite(value) and which.lo <= value <= which.hi
    assert notice is None or isinstance(notice, str)
