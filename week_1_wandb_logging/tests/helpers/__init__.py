"""Test helpers: servers and projects the tests start (not tests themselves)."""
