"""Reading responses off the socket: every byte kept, framing followed exactly, digests right."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator

import pytest

from crawlers.recorder.wire import EmptyResponse, ResponseError, read_response

_open: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def serve(
    chunks: list[bytes], *, close: bool = True, wait: threading.Event | None = None
) -> socket.socket:
    """A socket whose peer sends ``chunks`` (one send each), then closes if asked.

    With ``wait``, the last chunk is sent only once the event is set (a second response).
    """
    ours, theirs = socket.socketpair()
    _open.extend((ours, theirs))

    def send() -> None:
        # A test may end (and close both ends) before this thread is done, e.g. when it never
        # sets ``wait``: what is left to send no longer matters then.
        with contextlib.suppress(OSError):
            for i, chunk in enumerate(chunks):
                if wait is not None and i == len(chunks) - 1:
                    wait.wait(5)
                theirs.sendall(chunk)
            if close:
                theirs.shutdown(socket.SHUT_WR)

    threading.Thread(target=send, daemon=True).start()
    ours.settimeout(5)
    return ours


def block_of(sock: socket.socket, method: str = "GET", **kwargs: int) -> tuple[bytes, object]:
    response = read_response(sock, method, **kwargs)  # type: ignore[arg-type]
    response.block.seek(0)
    data = response.block.read()
    response.close()
    assert response.length == len(data)
    assert response.block_digest.hexdigest() == hashlib.sha256(data).hexdigest()
    return data, response


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.fixture(params=["whole", "bytes"])
def split(request: pytest.FixtureRequest) -> object:
    return (lambda d: [d]) if request.param == "whole" else byte_by_byte


def test_content_length_body_ends_exactly_and_leaves_the_connection_reusable(split) -> None:  # type: ignore[no-untyped-def]
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
    second = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    asked = threading.Event()
    sock = serve([*split(first), second], close=False, wait=asked)
    data, response = block_of(sock)
    asked.set()
    assert data == first
    assert response.status == 200  # type: ignore[attr-defined]
    assert response.framing == "length"  # type: ignore[attr-defined]
    assert not response.will_close  # type: ignore[attr-defined]
    assert response.payload_digest.hexdigest() == hashlib.sha256(b"hello").hexdigest()  # type: ignore[attr-defined]
    data2, response2 = block_of(sock)
    assert data2 == second
    assert response2.status == 404  # type: ignore[attr-defined]


def test_chunked_body_keeps_its_framing_and_digests_the_entity(split) -> None:  # type: ignore[no-untyped-def]
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    data, response = block_of(serve(split(wire), close=False))
    assert data == wire
    assert response.framing == "chunked"  # type: ignore[attr-defined]
    assert response.payload_digest.hexdigest() == hashlib.sha256(b"hello world").hexdigest()  # type: ignore[attr-defined]
    assert response.truncated is None  # type: ignore[attr-defined]


def test_body_until_close(split) -> None:  # type: ignore[no-untyped-def]
    wire = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    data, response = block_of(serve(split(wire)))
    assert data == wire
    assert response.framing == "close"  # type: ignore[attr-defined]
    assert response.will_close  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "head"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ],
)
def test_responses_without_a_body(method: str, head: bytes) -> None:
    data, response = block_of(serve([head], close=False), method)
    assert data == head
    assert response.framing == "none"  # type: ignore[attr-defined]
    assert response.payload_digest.hexdigest() == hashlib.sha256(b"").hexdigest()  # type: ignore[attr-defined]


def test_interim_responses_stay_in_the_block() -> None:
    wire = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    data, response = block_of(serve([wire], close=False))
    assert data == wire
    assert response.status == 200  # type: ignore[attr-defined]
    assert data[response.body_offset :] == b"ok"  # type: ignore[attr-defined]


def test_truncated_bodies_are_marked() -> None:
    _, response = block_of(serve([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]))
    assert response.truncated == "disconnect"  # type: ignore[attr-defined]
    assert response.will_close  # type: ignore[attr-defined]
    _, chunked = block_of(serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"]))
    assert chunked.truncated == "disconnect"  # type: ignore[attr-defined]


def test_max_size_cuts_the_body() -> None:
    body = b"x" * 5000
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body
    _, response = block_of(serve([wire]), max_size=1000)
    assert response.truncated == "length"  # type: ignore[attr-defined]


def test_malformed_header_lines_are_kept_but_not_parsed() -> None:
    wire = b"HTTP/1.1 200 OK\r\nX-Powered-By PHP/4\r\nBad Name: v\r\nContent-Length: 2\r\n\r\nok"
    data, response = block_of(serve([wire], close=False))
    assert data == wire
    assert response.header("content-length") == "2"  # type: ignore[attr-defined]
    assert response.header("X-Powered-By PHP/4") is None  # type: ignore[attr-defined]


def test_a_closed_connection_and_garbage_are_errors() -> None:
    with pytest.raises(EmptyResponse):
        read_response(serve([]), "GET")
    with pytest.raises(ResponseError, match="not an HTTP status line"):
        read_response(serve([b"SSH-2.0-OpenSSH\r\n\r\n"]), "GET")
    with pytest.raises(ResponseError, match="inside the response header block"):
        read_response(serve([b"HTTP/1.1 200 OK\r\nContent-"]), "GET")


def test_extra_bytes_after_a_response_make_the_connection_unreusable() -> None:
    _, response = block_of(
        serve([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE"], close=False)
    )
    assert response.will_close  # type: ignore[attr-defined]
