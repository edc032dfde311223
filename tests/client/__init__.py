"""Tests of the client (reading layer)."""
