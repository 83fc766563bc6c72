"""Test data modules (corpora, fixtures as plain Python)."""
