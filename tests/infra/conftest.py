"""The Terraform of ``infra/terraform``, parsed with python-hcl2, for the tests beside this file.

Nothing here runs Terraform or reaches a network: the deployment cannot be planned offline
(providers are not downloadable here), so the tests read the configuration itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hcl2.api import load as load_hcl

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
MODULES = TERRAFORM / "modules"
ENVS = TERRAFORM / "envs"
ENV_NAMES = ("dev", "prod")
MODULE_NAMES = ("network", "evidence_store", "iam", "database", "broker", "secrets", "airflow")


@dataclass
class Config:
    """One Terraform directory (a module or an environment), its blocks merged over its files."""

    path: Path
    blocks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    def labelled(self, kind: str) -> dict[str, dict[str, Any]]:
        """``variable``/``output``/``module`` blocks by their one label."""
        out: dict[str, dict[str, Any]] = {}
        for block in self.blocks.get(kind, []):
            out.update(block)
        return out

    def typed(self, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``resource``/``data`` blocks by (type, name)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for block in self.blocks.get(kind, []):
            for rtype, by_name in block.items():
                for name, body in by_name.items():
                    out[(rtype, name)] = body
        return out

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {n: b for (t, n), b in self.typed("resource").items() if t == rtype}

    def data(self, dtype: str) -> dict[str, dict[str, Any]]:
        return {n: b for (t, n), b in self.typed("data").items() if t == dtype}


def load(path: Path) -> Config:
    config = Config(path)
    for tf in sorted(path.glob("*.tf")):
        with tf.open(encoding="utf-8") as f:
            parsed = load_hcl(f)
        for kind, blocks in parsed.items():
            config.blocks.setdefault(kind, []).extend(blocks)
        config.comments.extend(
            line.strip() for line in tf.read_text(encoding="utf-8").splitlines() if "#" in line
        )
    return config


def one(value: Any) -> Any:
    """A nested block as python-hcl2 gives it: a list of one dict (or the dict itself)."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The statements of an ``aws_iam_policy_document``, static and ``dynamic`` alike."""
    yield from as_list(document.get("statement"))
    for dynamic in as_list(document.get("dynamic")):
        for label, body in dynamic.items():
            if label == "statement":
                yield from as_list(one(body).get("content"))


@pytest.fixture(scope="session")
def modules() -> dict[str, Config]:
    return {name: load(MODULES / name) for name in MODULE_NAMES}


@pytest.fixture(scope="session")
def envs() -> dict[str, Config]:
    return {name: load(ENVS / name) for name in ENV_NAMES}


@pytest.fixture(scope="session")
def all_configs(modules: dict[str, Config], envs: dict[str, Config]) -> list[Config]:
    return [*modules.values(), *envs.values()]
