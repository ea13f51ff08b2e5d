"""The egress guard: which addresses a capture may connect to, checked at connect time.

A name is resolved once, every resolved address is checked, and the connection is made to a
checked address, never by name again, so DNS rebinding cannot slip a private address past the
check. Refused: loopback, private (RFC 1918), shared (100.64/10), link-local (including the
cloud metadata address 169.254.169.254), multicast, unique-local IPv6, unspecified and reserved
addresses, and IPv4 addresses hidden in IPv6 (mapped, 6to4, NAT64) that fall in those ranges.
``ATTEST_ALLOW_NETWORKS`` (a CIDR list) re-opens ranges on purpose; the tests and the demo
allow 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from archive.errors import CaptureRefused, ConfigError, ConnectFailure, DnsFailure, FetchTimeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
Connector = Callable[[tuple[str, int], float], socket.socket]

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``, in its order, deduplicated."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DnsFailure(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    except UnicodeError as exc:
        raise DnsFailure(f"cannot resolve {host}: invalid name") from exc
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


@dataclass
class StaticResolver:
    """Resolves names from a fixed table (tests, pinned hosts); unknown names fail like DNS."""

    table: Mapping[str, list[str]]

    def __call__(self, host: str, port: int) -> list[str]:
        try:
            return list(self.table[host.lower().rstrip(".")])
        except KeyError:
            raise DnsFailure(f"cannot resolve {host}: not in the static resolver table") from None


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def refusal_reason(addr: IPAddress) -> str | None:
    """Why an address is not a public unicast address, or None if it is one."""
    if addr in METADATA_ADDRESSES:
        return "cloud metadata address"
    if addr.is_loopback:
        return "loopback address"
    if addr.is_link_local:
        return "link-local address"
    if addr.is_multicast:
        return "multicast address"
    if addr.is_unspecified:
        return "unspecified address"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            # The IPv4 address is where the packets go: judge it, not the IPv6 wrapper (whose
            # prefixes the stdlib calls "reserved", which would refuse every site on a DNS64
            # network).
            reason = refusal_reason(inner)
            return f"{reason} embedded in IPv6" if reason else None
        if addr in ipaddress.ip_network("fc00::/7"):
            return "unique-local IPv6 address"
    if addr.is_private:
        return "private address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in ipaddress.ip_network("100.64.0.0/10"):
        return "shared (carrier-grade NAT) address"
    if addr.is_reserved:
        return "reserved address"
    if not addr.is_global:
        return "non-global address"
    return None


def parse_networks(value: str, *, setting: str = "ATTEST_ALLOW_NETWORKS") -> list[IPNetwork]:
    networks: list[IPNetwork] = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{setting}: {item!r} is not a CIDR network ({exc})") from exc
    return networks


@dataclass
class EgressPolicy:
    """Decides whether an address may be connected to."""

    allow: list[IPNetwork] = field(default_factory=list)

    @classmethod
    def from_setting(cls, value: str | None) -> EgressPolicy:
        return cls(parse_networks(value or ""))

    def check(self, host: str, address: str) -> None:
        """Raise :class:`CaptureRefused` unless ``address`` may be connected to."""
        try:
            addr = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError as exc:
            raise CaptureRefused(host, address, "not an IP address") from exc
        if any(addr in net for net in self.allow if net.version == addr.version):
            return
        reason = refusal_reason(addr)
        if reason is not None:
            raise CaptureRefused(host, address, f"{reason} (not in ATTEST_ALLOW_NETWORKS)")


def _tcp_connect(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


@dataclass
class GuardedConnector:
    """Resolves, checks, then connects to a checked address."""

    policy: EgressPolicy
    resolver: Resolver = system_resolver
    connect: Connector = _tcp_connect

    def allowed_addresses(self, host: str, port: int) -> list[str]:
        """Resolved addresses that pass the policy; raises if none does."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
            addresses = [str(literal)]
        except ValueError:
            addresses = self.resolver(host, port)
        if not addresses:
            raise DnsFailure(f"cannot resolve {host}: no addresses")
        allowed: list[str] = []
        first_refusal: CaptureRefused | None = None
        for address in addresses:
            try:
                self.policy.check(host, address)
            except CaptureRefused as exc:
                first_refusal = first_refusal or exc
                continue
            allowed.append(address)
        if not allowed:
            assert first_refusal is not None
            raise first_refusal
        return allowed

    def open(self, host: str, port: int, timeout: float) -> socket.socket:
        """A connected socket to ``host:port``, or a :class:`CaptureError` naming why not."""
        last: Exception | None = None
        for address in self.allowed_addresses(host, port):
            try:
                return self.connect((address, port), timeout)
            except TimeoutError as exc:
                last = FetchTimeout(f"connecting to {host} ({address}) port {port} timed out")
                last.__cause__ = exc
            except OSError as exc:
                last = ConnectFailure(
                    f"cannot connect to {host} ({address}) port {port}: {exc.strerror or exc}"
                )
                last.__cause__ = exc
        assert last is not None
        raise last


def load_hosts_table(lines: Iterable[str]) -> dict[str, list[str]]:
    """Parse ``/etc/hosts``-style lines (``ADDRESS NAME...``) into a resolver table."""
    table: dict[str, list[str]] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        address, *names = line.split()
        for name in names:
            table.setdefault(name.lower(), []).append(address)
    return table
