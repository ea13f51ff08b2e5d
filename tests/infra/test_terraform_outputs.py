"""The environments' outputs are exactly the settings attest and Airflow read at run time.

``terraform output -json`` of either environment configures a worker: every ``ATTEST_*`` output
is a setting of ``settings.py``, every ``AIRFLOW__*`` output a real option of the installed
Airflow (its ``_SECRET``/``_CMD`` forms only for the options Airflow allows them on), and both
environments expose the same names.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Config

REQUIRED = {
    "ATTEST_STORE",
    "ATTEST_S3_ENDPOINT",
    "ATTEST_S3_OBJECT_LOCK_DAYS",
    "ATTEST_INDEX",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
    "AIRFLOW__CELERY__BROKER_URL_SECRET",
    "nat_egress_ips",
    "role_arns",
}
AIRFLOW_OPTION = re.compile(r"AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)")

_AIRFLOW_CONFIG = """
import json
from airflow.configuration import conf
print(json.dumps({
    "options": {s: sorted(d.get("options", {})) for s, d in conf.configuration_description.items()},
    "sensitive": sorted(f"{s}.{o}" for s, o in conf.sensitive_config_values),
}))
"""


@pytest.fixture(scope="module")
def airflow_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The installed Airflow's options (core and providers'), read in a scratch AIRFLOW_HOME."""
    home = tmp_path_factory.mktemp("airflow-home")
    done = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_CONFIG],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def _output_names(config: Config) -> set[str]:
    return set(config.labelled("output"))


def test_both_environments_expose_the_same_outputs(envs: dict[str, Config]) -> None:
    assert _output_names(envs["dev"]) == _output_names(envs["prod"])
    assert (envs["dev"].path / "outputs.tf").read_text() == (
        envs["prod"].path / "outputs.tf"
    ).read_text()


def test_the_required_outputs_are_there(envs: dict[str, Config]) -> None:
    for env in envs.values():
        assert _output_names(env) >= REQUIRED, REQUIRED - _output_names(env)


def test_attest_outputs_are_attest_settings(envs: dict[str, Config]) -> None:
    documented = set(re.findall(r"``(ATTEST_[A-Z0-9_]+)``", (ROOT / "settings.py").read_text()))
    for env in envs.values():
        names = {n for n in _output_names(env) if n.startswith("ATTEST_")}
        assert names, env.path
        assert names <= documented, names - documented


def test_aws_outputs_are_read_by_the_s3_store(envs: dict[str, Config]) -> None:
    source = (ROOT / "archive" / "store" / "s3.py").read_text()
    for env in envs.values():
        for name in _output_names(env):
            if name.startswith("AWS_"):
                assert f'"{name}"' in source, name


def test_airflow_outputs_are_airflow_options(
    envs: dict[str, Config], airflow_config: dict[str, object]
) -> None:
    options = airflow_config["options"]
    sensitive = airflow_config["sensitive"]
    assert isinstance(options, dict)
    assert isinstance(sensitive, list)
    for env in envs.values():
        names = [n for n in _output_names(env) if n.startswith("AIRFLOW__")]
        assert names, env.path
        for name in names:
            match = AIRFLOW_OPTION.fullmatch(name)
            assert match, name
            section, option = match.group(1).lower(), match.group(2).lower()
            for suffix in ("_secret", "_cmd"):
                if option.endswith(suffix) and option not in options.get(section, []):
                    option = option.removesuffix(suffix)
                    assert f"{section}.{option}" in sensitive, f"{name}: no {suffix} form"
            assert option in options.get(section, []), f"{name}: no [{section}] {option}"


def test_no_password_reaches_an_output(envs: dict[str, Config]) -> None:
    """Connection URLs are given as secret names; ATTEST_INDEX has no password in it."""
    for env in envs.values():
        for name, out in env.labelled("output").items():
            match = AIRFLOW_OPTION.fullmatch(name)
            if match:
                option = match.group(2)
                if re.search(r"CONN|BROKER_URL|RESULT_BACKEND", option):
                    assert option.endswith(("_SECRET", "_CMD")), name
            assert "sensitive" not in out or out["sensitive"] is not True, name
    module = Path(ROOT / "infra/terraform/modules/database/outputs.tf").read_text()
    assert 'value       = "postgresql://attest@${' in module


def test_worker_environment_feeds_the_airflow_module(envs: dict[str, Config]) -> None:
    for env in envs.values():
        airflow = env.labelled("module")["airflow"]
        assert airflow["attest_environment"] == "${local.attest_environment}"
        assert airflow["platform"] == "${var.airflow_platform}"
        outputs = env.labelled("output")
        for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_S3_OBJECT_LOCK_DAYS"):
            assert outputs[name]["value"] == f'${{local.attest_environment["{name}"]}}'


def test_airflow_platform_is_a_validated_choice(modules: dict[str, Config]) -> None:
    platform = modules["airflow"].labelled("variable")["platform"]
    (validation,) = platform["validation"]
    # python-hcl2 7 drops the quotes of strings inside expressions
    assert validation["condition"] == "${contains([eks, mwaa], var.platform)}"
    helm = modules["airflow"].resources("helm_release")["airflow"]
    assert helm["chart"] == "airflow"
    assert helm["repository"] == "https://airflow.apache.org"
    assert "CeleryExecutor" in str(helm["values"])
    mwaa = modules["airflow"].resources("aws_mwaa_environment")["this"]
    assert mwaa["min_workers"] == "${var.min_workers}"
    assert mwaa["max_workers"] == "${var.max_workers}"


def test_the_eks_airflow_is_the_airflow_attest_pins(modules: dict[str, Config]) -> None:
    pinned = re.search(r'"apache-airflow==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned, "pyproject.toml pins no apache-airflow"
    version = modules["airflow"].labelled("variable")["airflow_version"]
    assert version["default"] == pinned.group(1)
    helm = modules["airflow"].resources("helm_release")["airflow"]
    assert "airflowVersion" in str(helm["values"])
