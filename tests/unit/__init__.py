"""Tests that need no AWS at all, not even moto."""
