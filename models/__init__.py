"""Model registry, weight loading and the project's own small trained models.

Nothing in this package imports Streamlit, and nothing heavy (torch, ultralytics)
is imported at package import time: every loader imports what it needs lazily.
"""
