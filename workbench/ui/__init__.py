"""Streamlit building blocks shared by the pages: the cached store, small widgets, one module per tab.

This is the only package under `workbench/` allowed to import Streamlit (ruff's banned-api rule);
everything here calls `workbench.services` and renders what comes back.
"""
