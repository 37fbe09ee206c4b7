"""A control is declared once (core.params.Param with label, limits, step, default, help) and
UrlState draws its widget from that declaration and mirrors it in the URL."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

APP = '''
import streamlit as st
from components.urlstate import UrlState
from core.params import Param

BITS = Param(default=6, kind=int, lo=2, hi=8, label="Weight bits", help="bits per weight")
ALPHA = Param(default=0.25, lo=0.0, hi=1.0, step=0.05, label="Alpha")
MODE = Param(default="tensor", kind=str, choices=("channel", "tensor"), label="Scale")
SIZE = Param(default=320, kind=int, choices=(320, 480, 640), label="Input size")
ON = Param(default=True, kind=bool, label="Remedy on")
url = UrlState("t")
left, right = st.columns(2)
bits = url.slider("bits", BITS, left)
alpha = url.number_input("alpha", ALPHA, right)
mode = url.radio("mode", MODE, horizontal=True)
size = url.select_slider("size", SIZE)
on = url.toggle("on", ON)
url.sync()
st.write(f"{bits}|{alpha}|{mode}|{size}|{on}")
'''


def _run(**query):
    at = AppTest.from_string(APP, default_timeout=30)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def test_widgets_are_drawn_from_their_declaration():
    at = _run()
    assert not at.exception
    s = at.slider[0]
    assert (s.label, s.min, s.max, s.value, s.help) == ("Weight bits", 2, 8, 6, "bits per weight")
    n = at.number_input[0]
    assert (n.label, n.min, n.max, n.step, n.value) == ("Alpha", 0.0, 1.0, 0.05, 0.25)
    assert at.radio[0].label == "Scale" and list(at.radio[0].options) == ["channel", "tensor"]
    assert at.select_slider[0].value == 320 and at.toggle[0].value is True
    assert at.markdown[-1].value == "6|0.25|tensor|320|True"


@pytest.mark.parametrize("query, shown, notice", [
    ({"bits": "3", "mode": "channel", "size": "640", "on": "0"}, "3|0.25|channel|640|False", False),
    ({"bits": "99"}, "6|0.25|tensor|320|True", True),  # outside the declared limits: the default, said
    ({"size": "500"}, "6|0.25|tensor|320|True", True),  # not one of the declared choices
])
def test_the_url_seeds_the_widget_within_the_declaration(query, shown, notice):
    at = _run(**query)
    assert at.markdown[-1].value == shown
    assert bool(at.info) == notice


def test_the_url_follows_the_widget():
    at = _run()
    at.slider[0].set_value(4).run()
    assert at.query_params["bits"] == ["4"] or at.query_params["bits"] == "4"
