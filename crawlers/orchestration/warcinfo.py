"""The ``warcinfo`` fields a run writes at the head of every WARC file.

They say how the capture was made: attest, Scrapy and Python versions, the run id (and the
Airflow dag/run/task/try/map index when Airflow runs it), a hash of the effective settings, the
source and its robots policy, the user agent and the egress IP. The recorder adds its own
version fields (:mod:`crawlers.recorder.warcinfo`).
"""

from __future__ import annotations

import platform
import socket
import urllib.request
from collections.abc import Mapping

from crawlers.recorder.warcinfo import package_version
from crawlers.registry import SourceSpec

WARC_1_1 = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
AIRFLOW_FIELDS = (
    ("AIRFLOW_CTX_DAG_ID", "airflow-dag-id"),
    ("AIRFLOW_CTX_DAG_RUN_ID", "airflow-run-id"),
    ("AIRFLOW_CTX_TASK_ID", "airflow-task-id"),
    ("AIRFLOW_CTX_TRY_NUMBER", "airflow-try-number"),
    ("AIRFLOW_CTX_MAP_INDEX", "airflow-map-index"),
)


def airflow_context(env: Mapping[str, str]) -> dict[str, str]:
    """The Airflow identifiers of the running task, when Airflow runs attest."""
    return {name: env[var] for var, name in AIRFLOW_FIELDS if env.get(var)}


def local_addresses() -> list[str]:
    """This machine's own addresses: the default route's source address, then the host name's."""
    found: list[str] = []
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                # UDP connect only selects a route; no packet is sent.
                sock.connect((probe, 9))
                addr = sock.getsockname()[0]
                if addr not in found:
                    found.append(addr)
        except OSError:
            continue
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addr = str(info[4][0])
            if addr not in found:
                found.append(addr)
    except OSError:
        pass
    return found


def egress_ip(configured: str | None, echo_url: str | None = None) -> str:
    """The egress IP as configured, as an echo service reports it, or the local addresses."""
    if configured:
        return configured
    if echo_url:
        try:
            with urllib.request.urlopen(echo_url, timeout=5) as resp:  # noqa: S310 - operator-set URL
                reported: bytes = resp.read(64)
                return reported.decode("ascii", "replace").strip() + f" (reported by {echo_url})"
        except OSError:
            pass
    addresses = local_addresses()
    return (
        ", ".join(addresses) or "unknown"
    ) + " (local addresses; public egress IP not configured)"


def common_fields(
    *,
    run_id: str,
    settings_hash: str,
    user_agent: str,
    egress: str,
    airflow: Mapping[str, str],
) -> list[tuple[str, str]]:
    fields = [
        ("software", f"attest/{package_version('attest')}"),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", WARC_1_1),
        ("scrapy-version", package_version("scrapy")),
        ("python-version", platform.python_version()),
        ("hostname", socket.gethostname()),
        ("attest-run-id", run_id),
        ("settings-sha256", settings_hash),
        ("http-header-user-agent", user_agent),
        ("egress-ip", egress),
    ]
    fields.extend(airflow.items())
    return fields


def source_fields(source: SourceSpec) -> list[tuple[str, str]]:
    robots = "obeyed" if source.obey_robots else f"ignored: {source.robots_override_reason}"
    fields = [
        ("source-id", source.id),
        ("source-kind", source.kind),
        ("source-registry", source.path),
        ("robots", robots),
        ("capture-method", "scrapy via attest recording proxy"),
    ]
    if source.title:
        fields.append(("description", source.title))
    return fields
