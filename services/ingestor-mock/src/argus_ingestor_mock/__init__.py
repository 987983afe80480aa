"""Argus simulated market."""
