"""Fixtures shared by the end-to-end modules."""

from archive_fixture import retrieval

__all__ = ["retrieval"]
