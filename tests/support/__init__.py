"""Helpers the tests share: real services (SeaweedFS) started on 127.0.0.1."""
