"""Reusable test helpers (real local servers, generated data)."""
