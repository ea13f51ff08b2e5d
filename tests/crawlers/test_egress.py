"""The egress guard: which resolved addresses a capture may connect to, and that nothing else
is ever connected to.

No test here opens a network connection: the guard's ``connect`` is a spy that records each
call and either fails the test or hands back one end of a local socket pair.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.errors import CaptureRefused, ConfigError, ConnectFailure, DnsFailure, FetchTimeout
from crawlers.recorder.egress import (
    EgressPolicy,
    GuardedConnector,
    StaticResolver,
    load_hosts_table,
    parse_networks,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
PORT = 443
TIMEOUT = 7.5

#: Addresses the guard refuses without an allow list, and the category its reason names.
REFUSED = [
    ("10.0.0.1", "private address"),
    ("172.16.5.4", "private address"),
    ("192.168.1.1", "private address"),
    ("127.0.0.1", "loopback address"),
    ("169.254.169.254", "cloud metadata address"),
    ("fd00:ec2::254", "cloud metadata address"),
    ("169.254.10.1", "link-local address"),
    ("fe80::1", "link-local address"),
    ("fc00::1", "unique-local IPv6 address"),
    ("fd12:3456::1", "unique-local IPv6 address"),
    ("::1", "loopback address"),
    ("224.0.0.1", "multicast address"),
    ("ff02::1", "multicast address"),
    ("0.0.0.0", "unspecified address"),
    ("::", "unspecified address"),
    ("100.64.0.1", "shared (carrier-grade NAT) address"),
    ("::ffff:10.0.0.1", "private address embedded in IPv6"),
    ("::ffff:127.0.0.1", "loopback address embedded in IPv6"),
    ("::ffff:169.254.169.254", "cloud metadata address embedded in IPv6"),
    ("64:ff9b::a00:1", "private address embedded in IPv6"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata address embedded in IPv6"),
    ("2002:a00:1::1", "private address embedded in IPv6"),
]
REFUSED_IDS = [address for address, _ in REFUSED]

#: Ranges that must never pass without an allow list, whatever the address inside them.
NEVER_WITHOUT_ALLOW_LIST = [
    "10.0.0.0/8",
    "192.168.0.0/16",
    "172.16.0.0/12",
    "127.0.0.0/8",
    "169.254.0.0/16",
]


class ConnectSpy:
    """Stands in for the TCP connect; ``forbidden`` fails the test on any call."""

    def __init__(
        self, behaviour: Literal["forbidden", "connects", "refused", "times out"] = "forbidden"
    ) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[tuple[str, int], float]] = []
        self.sockets: list[socket.socket] = []

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.calls.append((address, timeout))
        if self.behaviour == "forbidden":
            pytest.fail(f"the guard tried to connect to {address}")
        if self.behaviour == "refused":
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        if self.behaviour == "times out":
            raise TimeoutError("timed out")
        # A connected pair of local (AF_UNIX) sockets: a real socket, and no traffic anywhere.
        mine, theirs = socket.socketpair()
        self.sockets += [mine, theirs]
        return mine

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    @property
    def addresses(self) -> list[str]:
        return [address for (address, _port), _timeout in self.calls]


def no_dns(host: str, port: int) -> list[str]:
    pytest.fail(f"{host} is an IP literal and must not be looked up")


@pytest.fixture
def connecting_spy() -> Iterator[ConnectSpy]:
    spy = ConnectSpy("connects")
    yield spy
    spy.close()


def guard(
    table: dict[str, list[str]], spy: ConnectSpy, allow: str | None = None
) -> GuardedConnector:
    return GuardedConnector(EgressPolicy.from_setting(allow), StaticResolver(table), spy)


# --- refused targets ----------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "category"), REFUSED, ids=REFUSED_IDS)
def test_a_name_resolving_to_a_non_public_address_is_refused_without_connecting(
    address: str, category: str
) -> None:
    spy = ConnectSpy("forbidden")
    connector = guard({"target.example": [address]}, spy)
    with pytest.raises(CaptureRefused) as refused:
        connector.open("target.example", PORT, TIMEOUT)
    assert spy.calls == []
    assert refused.value.reason == f"{category} (not in ATTEST_ALLOW_NETWORKS)"
    assert (refused.value.host, refused.value.address) == ("target.example", address)
    assert refused.value.outcome == "egress_refused"


@pytest.mark.parametrize(("address", "category"), REFUSED, ids=REFUSED_IDS)
def test_an_ip_literal_host_is_checked_itself_never_looked_up_and_refused(
    address: str, category: str
) -> None:
    spy = ConnectSpy("forbidden")
    connector = GuardedConnector(EgressPolicy(), no_dns, spy)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(CaptureRefused) as refused:
        connector.open(host, PORT, TIMEOUT)
    assert spy.calls == []
    assert category in refused.value.reason


def test_a_name_with_only_non_public_addresses_is_refused_naming_the_first() -> None:
    spy = ConnectSpy("forbidden")
    connector = guard({"internal.example": ["192.168.1.1", "127.0.0.1", "fe80::1"]}, spy)
    with pytest.raises(CaptureRefused, match=r"internal\.example \(192\.168\.1\.1\): private"):
        connector.open("internal.example", PORT, TIMEOUT)
    assert spy.calls == []


# --- public targets -----------------------------------------------------------------------------


def test_of_public_and_private_addresses_only_the_public_one_is_connected_to(
    connecting_spy: ConnectSpy,
) -> None:
    connector = guard(
        {"mixed.example": ["10.0.0.1", PUBLIC_V4, "127.0.0.1", "169.254.169.254"]},
        connecting_spy,
    )
    sock = connector.open("mixed.example", PORT, TIMEOUT)
    assert sock is connecting_spy.sockets[0]
    assert connecting_spy.calls == [((PUBLIC_V4, PORT), TIMEOUT)]


def test_when_public_addresses_fail_the_private_ones_are_still_never_tried() -> None:
    spy = ConnectSpy("refused")
    connector = guard({"mixed.example": ["10.0.0.1", PUBLIC_V4, "::1", PUBLIC_V6]}, spy)
    with pytest.raises(ConnectFailure, match=rf"\({PUBLIC_V6}\) port {PORT}: Connection refused"):
        connector.open("mixed.example", PORT, TIMEOUT)
    assert spy.addresses == [PUBLIC_V4, PUBLIC_V6]


def test_a_connect_timeout_is_a_fetch_timeout() -> None:
    spy = ConnectSpy("times out")
    connector = guard({"slow.example": [PUBLIC_V4]}, spy)
    with pytest.raises(FetchTimeout, match="timed out") as timeout:
        connector.open("slow.example", PORT, TIMEOUT)
    assert timeout.value.outcome == "timeout"
    assert spy.addresses == [PUBLIC_V4]


@pytest.mark.parametrize(
    "address",
    [PUBLIC_V4, PUBLIC_V6, "64:ff9b::5db8:d822", "::ffff:93.184.216.34"],
    ids=["ipv4", "ipv6", "nat64-of-public", "mapped-public"],
)
def test_public_addresses_are_connected_to_including_public_ipv4_inside_ipv6(
    address: str, connecting_spy: ConnectSpy
) -> None:
    connector = guard({"public.example": [address]}, connecting_spy)
    connector.open("public.example", PORT, TIMEOUT)
    assert connecting_spy.calls == [((address, PORT), TIMEOUT)]


def test_a_public_ip_literal_is_connected_to_without_a_lookup(connecting_spy: ConnectSpy) -> None:
    connector = GuardedConnector(EgressPolicy(), no_dns, connecting_spy)
    connector.open(f"[{PUBLIC_V6}]", PORT, TIMEOUT)
    connector.open(PUBLIC_V4, PORT, TIMEOUT)
    assert connecting_spy.addresses == [PUBLIC_V6, PUBLIC_V4]


# --- allow lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        (PUBLIC_V4, True),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("128.0.0.1", True),  # public, so allowed anyway
    ],
)
def test_an_allow_list_reopens_exactly_its_ranges(
    address: str, allowed: bool, connecting_spy: ConnectSpy
) -> None:
    connector = guard({"target.example": [address]}, connecting_spy, allow="127.0.0.0/8")
    if allowed:
        connector.open("target.example", PORT, TIMEOUT)
        assert connecting_spy.addresses == [address]
    else:
        with pytest.raises(CaptureRefused):
            connector.open("target.example", PORT, TIMEOUT)
        assert connecting_spy.calls == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("10.2.0.1", False),
        ("fd00::5", True),
        ("fc00::1", False),
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("169.254.169.254", False),
    ],
)
def test_an_allow_list_of_several_ranges_split_by_commas_and_semicolons(
    address: str, allowed: bool
) -> None:
    policy = EgressPolicy.from_setting(" 10.1.0.0/16; fd00::/8 , 127.0.0.1/32,")
    assert [str(net) for net in policy.allow] == ["10.1.0.0/16", "fd00::/8", "127.0.0.1/32"]
    if allowed:
        policy.check("target.example", address)
    else:
        with pytest.raises(CaptureRefused):
            policy.check("target.example", address)


@pytest.mark.parametrize("value", [None, "", " ", ",;, "])
def test_an_empty_allow_list_allows_no_range(value: str | None) -> None:
    policy = EgressPolicy.from_setting(value)
    assert policy.allow == []
    with pytest.raises(CaptureRefused):
        policy.check("localhost", "127.0.0.1")


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("not-a-network", "not-a-network"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("300.1.1.1/8", "300.1.1.1/8"),
        ("::1/129", "::1/129"),
        ("127.0.0.0/8, localhost", "localhost"),
    ],
)
def test_a_bad_allow_list_is_a_config_error_naming_the_setting_and_value(
    value: str, bad: str
) -> None:
    with pytest.raises(ConfigError) as error:
        EgressPolicy.from_setting(value)
    assert str(error.value).startswith(f"ATTEST_ALLOW_NETWORKS: {bad!r} is not a CIDR network")


def test_parse_networks_names_the_setting_it_was_read_from() -> None:
    with pytest.raises(ConfigError, match=r"^ATTEST_RECORDER_ALLOW: 'x' is not"):
        parse_networks("x", setting="ATTEST_RECORDER_ALLOW")


# --- resolving -----------------------------------------------------------------------------------


def test_an_unresolvable_name_is_a_dns_failure_and_nothing_is_connected() -> None:
    spy = ConnectSpy("forbidden")
    with pytest.raises(DnsFailure, match=r"cannot resolve nowhere\.example") as failure:
        guard({}, spy).open("nowhere.example", PORT, TIMEOUT)
    assert failure.value.outcome == "dns_error"
    assert spy.calls == []


def test_a_name_that_resolves_to_no_address_is_a_dns_failure() -> None:
    spy = ConnectSpy("forbidden")
    with pytest.raises(DnsFailure, match="no addresses"):
        guard({"empty.example": []}, spy).open("empty.example", PORT, TIMEOUT)
    assert spy.calls == []


def test_static_resolver_ignores_case_and_a_trailing_dot() -> None:
    resolver = StaticResolver({"news.example": [PUBLIC_V4]})
    assert resolver("News.Example.", PORT) == [PUBLIC_V4]


def test_hosts_table_lines_become_a_resolver_table() -> None:
    table = load_hosts_table(
        [
            "# fixture web",
            "127.0.0.1   news.test www.news.test  # the news site",
            "",
            "::1 news.test",
            "127.0.0.2 NGO.test",
        ]
    )
    assert table == {
        "news.test": ["127.0.0.1", "::1"],
        "www.news.test": ["127.0.0.1"],
        "ngo.test": ["127.0.0.2"],
    }


# --- properties ----------------------------------------------------------------------------------

_addresses_in_never_ranges = st.sampled_from(NEVER_WITHOUT_ALLOW_LIST).flatmap(
    lambda network: st.ip_addresses(network=network)
)


def _in_ipv6(address: ipaddress.IPv4Address, wrapper: str) -> ipaddress.IPv6Address:
    value = int(address)
    if wrapper == "mapped":
        return ipaddress.IPv6Address(f"::ffff:{address}")
    if wrapper == "nat64":
        return ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | value)
    return ipaddress.IPv6Address((0x2002 << 112) | (value << 80))  # 6to4


@settings(derandomize=True, database=None, max_examples=500)
@given(address=_addresses_in_never_ranges)
def test_no_address_in_a_private_loopback_or_link_local_range_passes_without_an_allow_list(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    spy = ConnectSpy("forbidden")
    with pytest.raises(CaptureRefused):
        guard({"target.example": [str(address)]}, spy).open("target.example", PORT, TIMEOUT)
    with pytest.raises(CaptureRefused):
        GuardedConnector(EgressPolicy(), no_dns, spy).open(str(address), PORT, TIMEOUT)
    assert spy.calls == []


@settings(derandomize=True, database=None, max_examples=500)
@given(
    address=_addresses_in_never_ranges,
    wrapper=st.sampled_from(["mapped", "nat64", "6to4"]),
)
def test_no_such_address_passes_hidden_inside_ipv6_either(
    address: ipaddress.IPv4Address, wrapper: str
) -> None:
    hidden = _in_ipv6(address, wrapper)
    spy = ConnectSpy("forbidden")
    with pytest.raises(CaptureRefused, match="embedded in IPv6"):
        guard({"target.example": [str(hidden)]}, spy).open("target.example", PORT, TIMEOUT)
    assert spy.calls == []


@settings(derandomize=True, database=None, max_examples=200)
@given(address=st.ip_addresses(network="10.0.0.0/8"))
def test_an_allow_list_for_one_range_does_not_open_the_others(
    address: ipaddress.IPv4Address,
) -> None:
    policy = EgressPolicy.from_setting("127.0.0.0/8")
    with pytest.raises(CaptureRefused):
        policy.check("target.example", str(address))
