"""The smallest Streamlit app: the benchmark starts it beside Home.py to measure Streamlit's
own cold start on the machine (server start, browser loading the front end, one element), so
the lab's share of its cold start can be read off."""

import streamlit as st

st.title("CV Interview Lab")
