"""Tests of the data tools (headwater.S3)."""
