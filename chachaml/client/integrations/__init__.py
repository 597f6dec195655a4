"""Helpers that track the models of other libraries (scikit-learn)."""
