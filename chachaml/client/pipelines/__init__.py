"""Pipelines: steps with dependencies, each step a tracked run."""
