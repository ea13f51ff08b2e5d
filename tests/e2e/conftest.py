"""Fixtures shared by the end-to-end modules."""

from archive_fixture import case_file, retrieval
from signing_fixture import signing

__all__ = ["case_file", "retrieval", "signing"]
