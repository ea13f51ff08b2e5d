"""Canaries: the private or undocumented third-party APIs attest relies on, one test each.

Each test checks that the API is still there and, where that is cheap, its signature or what it
does; when an upgrade removes or renames one, the test fails naming the package, its version
and what attest relies on, instead of a crawl, a capture or a replay failing in a strange way
later. docs/adr/0005-third-party-internals.md lists them, with why no public API does.
"""

from __future__ import annotations

import _ssl
import ast
import http.client
import http.server
import importlib.util
import inspect
import io
import json
import platform
import socket
import socketserver
import ssl
import subprocess
import textwrap
import threading
import zipfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
import urllib3
import warcprox.mitmproxy
import warcprox.warcproxy
from scrapy.core.downloader import Downloader, Slot
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from support.replay import replay_venv
from twisted.web.client import Agent

from demoweb.tlsca import make_test_ca

ADR = "docs/adr/0005-third-party-internals.md"
MITM = warcprox.mitmproxy.MitmProxyHandler


def relied_on(package: str, what: str) -> str:
    """The failure message: the package, its installed version, what attest relies on."""
    installed = platform.python_version() if package == "Python" else version(package)
    return f"{package} {installed}: {what} (see {ADR})"


def private(module: str, name: str, package: str) -> Any:
    """``module.name``, or a failure naming the package. attest's modules that use a private
    name are imported inside the tests, so that one gone fails its own test, not them all."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(relied_on(package, f"{module}.{name} is gone ({exc})"), pytrace=False)


def recording_handler() -> Any:
    return private("crawlers.recorder.proxy", "RecordingHandler", "warcprox")


def names_used(func: Callable[..., Any]) -> set[str]:
    """Every global and attribute name the function's code (nested code included) refers to."""
    found: set[str] = set()
    pending: list[CodeType] = [inspect.unwrap(func).__code__]
    while pending:
        code = pending.pop()
        found.update(code.co_names)
        pending.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return found


def self_attributes_set(func: Callable[..., Any]) -> set[str]:
    """The ``self.<name>`` the function assigns, read from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(func))))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def parameters(func: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(func).parameters)


# --- warcprox: the recorder is its proxy, subclassed (crawlers/recorder/proxy.py) -----------


def test_warcprox_sends_every_method_it_has_no_handler_for_to_do_command() -> None:
    what = (
        "MitmProxyHandler.__getattr__ sends every do_<METHOD> without a method of its own to "
        "do_COMMAND; the recorder relays and records GET, POST, PATCH, ... through it"
    )
    assert "__getattr__" in vars(MITM), relied_on("warcprox", what)
    handler = object.__new__(recording_handler())
    assert handler.do_PATCH == handler.do_COMMAND, relied_on("warcprox", what)


def test_warcprox_answers_no_method_itself_that_the_recorder_does_not_take_over() -> None:
    ours = recording_handler()
    for name in dir(warcprox.warcproxy.WarcProxyHandler):
        if name.startswith("do_"):
            owner = getattr(ours, name).__qualname__.split(".")[0]
            assert owner == "RecordingHandler", relied_on(
                "warcprox",
                f"its handler answers {name.removeprefix('do_')} requests itself "
                f"({owner}.{name}); the recorder must take every method over, or such a "
                "request is neither relayed nor recorded",
            )


def test_warcprox_connect_calls_the_hooks_the_recorder_overrides() -> None:
    hooks = ("_determine_host_port", "_transition_to_ssl")
    for hook in hooks:
        assert parameters(getattr(MITM, hook, lambda: None)) == ["self"], relied_on(
            "warcprox", f"MitmProxyHandler.{hook}(self), which the recorder overrides"
        )
    called = names_used(MITM.do_CONNECT)
    expected = {"is_connect", *hooks, "setup", "handle_one_request"}
    assert expected <= called, relied_on(
        "warcprox",
        "MitmProxyHandler.do_CONNECT sets is_connect, calls _determine_host_port and "
        "_transition_to_ssl (the recorder's: plain or TLS tunnels), then setup() and "
        f"handle_one_request() for the tunnel's requests; it no longer uses {expected - called}",
    )


def test_warcprox_handler_applies_its_socket_timeout_class_attribute() -> None:
    assert hasattr(MITM, "_socket_timeout"), relied_on(
        "warcprox", "MitmProxyHandler._socket_timeout, set by the recorder on its handler class"
    )
    assert "_socket_timeout" in names_used(MITM.__init__), relied_on(
        "warcprox",
        "MitmProxyHandler.__init__ applies _socket_timeout to the client's socket: without it "
        "the recorder's client connections have no timeout",
    )


def test_warcprox_server_keeps_its_upstream_tls_context_in_remote_connection_pool() -> None:
    init = warcprox.mitmproxy.SingleThreadedMitmProxy.__init__
    assert "remote_connection_pool" in self_attributes_set(init), relied_on(
        "warcprox",
        "the proxy server's remote_connection_pool (a urllib3 PoolManager made with the TLS "
        "context warcprox configures for origins); the recorder wraps its own connections "
        "with that context",
    )
    context = ssl.create_default_context()
    pool = urllib3.PoolManager(ssl_context=context)
    assert pool.connection_pool_kw.get("ssl_context") is context, relied_on(
        "urllib3", "PoolManager.connection_pool_kw['ssl_context'] is the context it was given"
    )


def test_warcprox_send_error_without_the_failed_url_queue() -> None:
    assert parameters(MITM.send_error)[:4] == ["self", "code", "message", "explain"], relied_on(
        "warcprox",
        "MitmProxyHandler.send_error(self, code, message, explain), which the recorder calls "
        "directly to skip WarcProxyHandler's queueing of a FailedUrl for warcprox's writer",
    )


# --- the standard library ------------------------------------------------------------------


def test_http_client_read_headers_returns_the_raw_header_lines() -> None:
    read_headers = private("http.client", "_read_headers", "Python")
    fp = io.BytesIO(b"A: 1\r\nB:  2\r\n\r\nbody")
    lines = read_headers(fp)
    what = "http.client._read_headers(fp) returns the header block's raw lines"
    assert lines[:2] == [b"A: 1\r\n", b"B:  2\r\n"], relied_on("Python", f"{what} ({lines!r})")
    assert fp.read() == b"body", relied_on("Python", f"{what} and leaves fp at the body")


def test_http_message_keeps_its_headers_as_a_list_of_pairs() -> None:
    message = http.client.HTTPMessage()
    message["A"] = "1"
    message["B"] = "2"
    pairs = getattr(message, "_headers", None)
    assert pairs == [("A", "1"), ("B", "2")], relied_on(
        "Python",
        "email.message.Message._headers, the (name, value) pairs in order, which the recorder "
        f"reads and replaces (it is {pairs!r})",
    )
    message._headers = [("C", "3")]  # type: ignore[attr-defined]
    answers = (message.get("C"), message.items())
    assert answers == ("3", [("C", "3")]), relied_on(
        "Python", "a Message whose _headers is replaced answers from the new pairs"
    )


def test_http_server_parses_request_headers_through_http_client_at_call_time() -> None:
    assert parameters(http.client.parse_headers) == ["fp", "_class"], relied_on(
        "Python", "http.client.parse_headers(fp, _class), which the recorder process replaces"
    )
    used = names_used(http.server.BaseHTTPRequestHandler.parse_request)
    assert {"client", "parse_headers", "MessageClass"} <= used, relied_on(
        "Python",
        "BaseHTTPRequestHandler.parse_request calls http.client.parse_headers(..., "
        "_class=self.MessageClass) through the module: the recorder's faster parser and "
        "FastMessage take effect only so",
    )


def test_stream_request_handler_can_disable_nagle_per_handler_class() -> None:
    handler = socketserver.StreamRequestHandler
    what = (
        "StreamRequestHandler.disable_nagle_algorithm, read by setup(): without TCP_NODELAY "
        "each small write on a kept-alive recorder connection waits for a delayed ACK"
    )
    assert hasattr(handler, "disable_nagle_algorithm"), relied_on("Python", what)
    assert "disable_nagle_algorithm" in names_used(handler.setup), relied_on("Python", what)


def test_a_tls_socket_gives_the_chain_the_server_presented(tmp_path: Path) -> None:
    what = (
        "get_unverified_chain() on SSLSocket (3.13) or on its private _sslobj (3.11, 3.12), "
        "and _ssl.ENCODING_DER: the recorder keeps each origin's certificate chain with them"
    )
    assert hasattr(_ssl, "ENCODING_DER"), relied_on("Python", what)
    assert hasattr(ssl.SSLSocket, "get_unverified_chain") or hasattr(
        _ssl._SSLSocket, "get_unverified_chain"
    ), relied_on("Python", what)
    ca = make_test_ca(tmp_path, ["localhost"])
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    ours, theirs = socket.socketpair()
    ours.settimeout(10)
    theirs.settimeout(10)
    server_side: list[ssl.SSLSocket] = []

    def serve() -> None:
        server_side.append(ca.server_context().wrap_socket(theirs, server_side=True))

    served = threading.Thread(target=serve, daemon=True)
    served.start()
    presented_chain = private("crawlers.recorder.tlschain", "presented_chain", "Python")
    with client_context.wrap_socket(ours, server_hostname="localhost") as client:
        served.join(10)
        chain = presented_chain(client)
    for sock in (*server_side, theirs):
        sock.close()
    assert len(chain) == 2, relied_on(
        "Python",
        f"the chain read from a TLS socket has {len(chain)} certificate(s) where the server "
        "sent 2 (leaf and CA): a TLS-chain record would keep the leaf alone",
    )


def test_zipfile_fp_ends_at_bytes_that_are_final(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open(zipfile.ZipInfo("one"), "w") as member:
            member.write(b"x" * 1000)
        assert archive.fp is not None
        archive.fp.flush()
        end = archive.fp.tell()
        prefix = path.read_bytes()[:end]
        with archive.open(zipfile.ZipInfo("two"), "w") as member:
            member.write(b"y" * 1000)
    what = (
        "ZipFile.fp: once a member written with open(info, 'w') is closed, the bytes before "
        "fp.tell() are final; the bundle export hashes them while the rest is written"
    )
    assert end == len(prefix) > 1000, relied_on("Python", what)
    assert path.read_bytes()[:end] == prefix, relied_on("Python", what)


# --- Scrapy and Twisted: the download handler and the downloader (crawlers/) ----------------


def test_scrapy_agent_builds_one_agent_per_request_through_get_agent() -> None:
    agent = private("scrapy.core.downloader.handlers.http11", "_ScrapyAgent", "Scrapy")
    keywords = {
        "contextFactory",
        "bindAddress",
        "pool",
        "maxsize",
        "warnsize",
        "fail_on_dataloss",
        "crawler",
        "tls_verbose_logging",
    }
    assert keywords <= set(parameters(agent.__init__)), relied_on(
        "Scrapy", f"http11._ScrapyAgent(*, {', '.join(sorted(keywords))})"
    )
    assert parameters(agent._get_agent) == ["self", "request", "timeout"], relied_on(
        "Scrapy", "agent._get_agent(request, timeout), which attest's agent overrides"
    )
    assert "_get_agent" in names_used(agent.download_request), relied_on(
        "Scrapy", "agent.download_request gets its agent from _get_agent"
    )
    assert {"_bindAddress", "_contextFactory", "_pool"} <= self_attributes_set(agent.__init__), (
        relied_on("Scrapy", "_ScrapyAgent keeps _bindAddress, _contextFactory and _pool")
    )


def test_scrapy_proxy_agent_asks_twisted_for_the_proxys_endpoint() -> None:
    agent = private("scrapy.core.downloader.handlers.http11", "_ScrapyProxyAgent", "Scrapy")
    expected = ["self", "reactor", "proxyURI", "contextFactory", "connectTimeout"]
    assert parameters(agent.__init__)[:5] == expected, relied_on(
        "Scrapy", f"http11._ScrapyProxyAgent({', '.join(expected[1:])}, ..., pool)"
    )
    assert "_getEndpoint" in names_used(agent.request), relied_on(
        "Scrapy",
        "_ScrapyProxyAgent.request gets the proxy's endpoint from _getEndpoint, which "
        "attest's agent caches (the recorder is the one endpoint of every request)",
    )


def test_twisted_agent_makes_endpoints_in_get_endpoint() -> None:
    assert parameters(getattr(Agent, "_getEndpoint", lambda: None)) == ["self", "uri"], relied_on(
        "Twisted", "twisted.web.client.Agent._getEndpoint(uri), which attest's proxy agent caches"
    )


def test_scrapy_http11_download_handler_keeps_what_attests_handler_reads() -> None:
    set_by_scrapy: set[str] = set()
    for cls in HTTP11DownloadHandler.__mro__:
        if cls.__module__.startswith("scrapy.") and "__init__" in vars(cls):
            set_by_scrapy |= self_attributes_set(vars(cls)["__init__"])
    read = {
        "_pool",
        "_contextFactory",
        "_bind_address",
        "_crawler",
        "_default_maxsize",
        "_default_warnsize",
        "_fail_on_dataloss",
        "_fail_on_dataloss_warned",
        "_tls_verbose_logging",
    }
    assert read <= set_by_scrapy, relied_on(
        "Scrapy",
        "HTTP11DownloadHandler's constructor sets the attributes attest's download handlers "
        f"read (KeepAliveDownloadHandler, BrowserDownloadHandler); missing: {read - set_by_scrapy}",
    )
    assert "download_request" in vars(HTTP11DownloadHandler), relied_on(
        "Scrapy", "HTTP11DownloadHandler.download_request, which attest's handler rewrites"
    )


def test_scrapy_private_download_handler_helpers() -> None:
    helpers = "scrapy.utils._download_handlers"
    get_dataloss_msg = private(helpers, "get_dataloss_msg", "Scrapy")
    wrap_twisted_exceptions = private(helpers, "wrap_twisted_exceptions", "Scrapy")
    assert "http://example.org/" in get_dataloss_msg("http://example.org/"), relied_on(
        "Scrapy", "get_dataloss_msg(url) names the URL"
    )
    with wrap_twisted_exceptions():
        pass


def test_scrapy_downloader_process_queue_is_attests_but_one_line() -> None:
    def tree(func: Callable[..., Any]) -> ast.AST:
        return ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]

    class DropTheAddedLine(ast.NodeTransformer):
        def visit_Expr(self, node: ast.Expr) -> ast.Expr | None:
            return None if ast.unparse(node) == "slot.transferring.add(request)" else node

    polite = private("crawlers.downloader", "PoliteDownloader", "Scrapy")
    ours = DropTheAddedLine().visit(tree(polite._process_queue))
    assert ast.dump(ours) == ast.dump(tree(Downloader._process_queue)), relied_on(
        "Scrapy",
        "Downloader._process_queue: crawlers/downloader.py copies it and adds one line; the "
        "copy must follow the new one",
    )
    assert {"transferring", "add", "remove"} <= names_used(Downloader._download), relied_on(
        "Scrapy", "Downloader._download adds a request to slot.transferring and removes it"
    )
    assert parameters(Downloader._wait_for_download) == [
        "self",
        "slot",
        "request",
        "queue_dfd",
    ], relied_on("Scrapy", "Downloader._wait_for_download(slot, request, queue_dfd)")
    assert isinstance(Slot(concurrency=1, delay=0).transferring, set), relied_on(
        "Scrapy",
        "Slot.transferring is a set: the request attest counts when it is scheduled is counted "
        "once when its download starts",
    )


def test_scrapy_schedule_coro() -> None:
    _schedule_coro = private("scrapy.utils.defer", "_schedule_coro", "Scrapy")
    assert parameters(_schedule_coro) == ["coro"], relied_on(
        "Scrapy", "_schedule_coro(coro), called by attest's downloader"
    )


def test_scrapy_robots_middleware_refuses_in_process_request_2() -> None:
    assert parameters(RobotsTxtMiddleware.process_request_2) == ["self", "rp", "request"], (
        relied_on("Scrapy", "RobotsTxtMiddleware.process_request_2(rp, request)")
    )
    assert "process_request_2" in names_used(RobotsTxtMiddleware.process_request), relied_on(
        "Scrapy",
        "RobotsTxtMiddleware.process_request calls process_request_2(rp, request), which "
        "attest overrides to mark refused requests robots_disallowed",
    )


# --- Airflow: `attest airflow-pools` (cli/airflow.py) ----------------------------------------


def test_airflow_pool_model_creates_and_lists_pools() -> None:
    # Read from the source: importing Airflow configures it from the environment.
    spec = importlib.util.find_spec("airflow")
    assert spec is not None, "Airflow is not installed here: ./setup.sh installs attest[airflow]"
    assert spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "models" / "pool.py"
    methods = {
        node.name: [a.arg for a in node.args.args]
        for cls in ast.parse(source.read_text()).body
        if isinstance(cls, ast.ClassDef) and cls.name == "Pool"
        for node in cls.body
        if isinstance(node, ast.FunctionDef)
    }
    create = methods.get("create_or_update_pool", [])
    assert create[:4] == ["name", "slots", "description", "include_deferred"], relied_on(
        "apache-airflow",
        "airflow.models.pool.Pool.create_or_update_pool(name, slots, description, "
        f"include_deferred), not part of Airflow 3's public interface (it has {create})",
    )
    assert "get_pools" in methods, relied_on(
        "apache-airflow", "airflow.models.pool.Pool.get_pools()"
    )


# --- pywb, in the replay venv: attest serve's replay (archive/serve/pywb_runner.py) ----------

PYWB_FACTS = r"""
import importlib, inspect, json
from importlib.metadata import version
frontend = importlib.import_module("pywb.apps.frontendapp")
rewriter = importlib.import_module("pywb.apps.rewriterapp")
server = importlib.import_module("pywb.utils.geventserver")
app = frontend.FrontEndApp
def names(func):
    code, found, pending = func.__code__, set(), [func.__code__]
    while pending:
        code = pending.pop()
        found.update(code.co_names)
        pending.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return sorted(found)
print(json.dumps({
    "version": version("pywb"),
    "geventserver": hasattr(frontend, "GeventServer"),
    "init_uses": names(app.__init__),
    "init_params": list(inspect.signature(app.__init__).parameters),
    "rewriter_cls": getattr(app, "REWRITER_APP_CLS", None) is rewriter.RewriterApp,
    "replay_api": getattr(app, "REPLAY_API", None),
    "cdx_api": getattr(app, "CDX_API", None),
    "upstream_paths_uses": names(app.get_upstream_paths),
    "render_content": list(inspect.signature(rewriter.RewriterApp.render_content).parameters),
    "get_upstream_url": list(
        inspect.signature(rewriter.RewriterApp.get_upstream_url).parameters
    ),
    "requests_in": [m.__name__ for m in (frontend, rewriter) if hasattr(m, "requests")],
    "wsgi_handler": hasattr(server, "RequestURIWSGIHandler"),
}))
"""


@pytest.fixture(scope="module")
def pywb() -> dict[str, Any]:
    python = replay_venv() / "bin" / "python"
    done = subprocess.run(
        [str(python), "-I", "-c", PYWB_FACTS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


def pywb_relied_on(facts: dict[str, Any], what: str) -> str:
    return f"pywb {facts['version']} (the replay venv): {what} (see {ADR})"


def test_pywb_front_end_starts_its_warcserver_through_a_module_level_geventserver(
    pywb: dict[str, Any],
) -> None:
    what = (
        "FrontEndApp.__init__ serves its WarcServer with pywb.apps.frontendapp.GeventServer, "
        "which attest replaces so that no port is opened; FrontEndApp.warcserver is then "
        "called in-process"
    )
    assert pywb["geventserver"], pywb_relied_on(pywb, what)
    assert "GeventServer" in pywb["init_uses"], pywb_relied_on(pywb, what)
    assert pywb["init_params"] == ["self", "config_file", "custom_config"], pywb_relied_on(
        pywb, "FrontEndApp(config_file, custom_config)"
    )
    assert "warcserver" in pywb["init_uses"], pywb_relied_on(pywb, "FrontEndApp.warcserver")


def test_pywb_front_end_upstream_urls_are_class_attributes_formatted_with_the_port(
    pywb: dict[str, Any],
) -> None:
    assert pywb["rewriter_cls"], pywb_relied_on(pywb, "FrontEndApp.REWRITER_APP_CLS")
    for name in ("replay_api", "cdx_api"):
        assert "%s" in (pywb[name] or ""), pywb_relied_on(
            pywb, f"FrontEndApp.{name.upper()} is a URL with %s for its WarcServer's port"
        )
    assert {"REPLAY_API", "CDX_API"} <= set(pywb["upstream_paths_uses"]), pywb_relied_on(
        pywb, "FrontEndApp.get_upstream_paths(port) formats REPLAY_API and CDX_API"
    )


def test_pywb_rewriter_hooks_keep_their_signatures(pywb: dict[str, Any]) -> None:
    assert pywb["render_content"] == ["self", "wb_url", "kwargs", "environ"], pywb_relied_on(
        pywb, "RewriterApp.render_content(wb_url, kwargs, environ), overridden to pass the pin"
    )
    assert pywb["get_upstream_url"] == ["self", "wb_url", "kwargs", "params"], pywb_relied_on(
        pywb, "RewriterApp.get_upstream_url(wb_url, kwargs, params), overridden to add the pin"
    )


def test_pywb_fetches_through_module_level_requests(pywb: dict[str, Any]) -> None:
    assert pywb["requests_in"] == ["pywb.apps.frontendapp", "pywb.apps.rewriterapp"], (
        pywb_relied_on(
            pywb,
            "pywb.apps.frontendapp and pywb.apps.rewriterapp fetch through their module-level "
            "`requests`, which attest replaces with an in-process session that refuses the web",
        )
    )


def test_pywb_request_uri_wsgi_handler(pywb: dict[str, Any]) -> None:
    assert pywb["wsgi_handler"], pywb_relied_on(
        pywb, "pywb.utils.geventserver.RequestURIWSGIHandler, the handler attest serves with"
    )
