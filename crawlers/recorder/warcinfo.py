"""Fields of the ``warcinfo`` record that only the recorder process knows."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def recorder_fields() -> list[tuple[str, str]]:
    return [
        ("recorder", f"attest-recorder on warcprox/{package_version('warcprox')}"),
        ("recorder-python", platform.python_version()),
        ("recorder-openssl", __import__("ssl").OPENSSL_VERSION),
    ]
