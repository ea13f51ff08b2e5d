"""Pages that probe the browser's confinement and its cross-origin requests.

- :class:`ProbeSite` ``/leak.html?forbidden=HOST:PORT&stun=HOST:PORT``: opens an
  ``RTCPeerConnection`` with a STUN/TURN server at ``stun``, WebSockets, ``fetch`` calls and
  ``sendBeacon`` calls, each to the forbidden address and to its own (allowed) origin; when
  every attempt is over it shows the log in an ``<article>`` (what the completeness wait looks
  for). ``/allowed-fetch`` and ``/allowed-beacon`` answer those calls on the page's origin,
  ``/ws`` is a WebSocket echo (:mod:`demoweb.websocket`): the page sends it a text and a
  binary message, logs the echoes, and closes it.
- ``/cors.html?api=ORIGIN``: asks a JSON API on another origin, once with a simple GET and once
  with a JSON POST carrying a custom header (a real CORS preflight), and shows the API's items.
- ``/ticker.html``: a story whose page never stops changing (a ticker adds a line every 100 ms).
- :class:`CorsApi`: that API. It answers preflights for ``/api/items`` only: a simple request
  that arrives as a preflight (as it did while the browser added a header of attest's to every
  request) gets no CORS headers, so the page shows an error instead of the data.
"""

from __future__ import annotations

import json

from demoweb.assets import token
from demoweb.http import Reply, Request
from demoweb.websocket import WebSocketEcho

LEAK_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Confinement probe</title></head>
<body><main id="out">running</main>
<script>
(async function () {
  const q = new URLSearchParams(location.search);
  const bad = q.get('forbidden'), stun = q.get('stun');
  const log = [];
  const settle = (ms) => new Promise((r) => setTimeout(r, ms));
  try {
    const pc = new RTCPeerConnection({iceServers: [
      {urls: 'stun:' + stun},
      {urls: 'turn:' + stun + '?transport=udp', username: 'probe', credential: 'probe'}]});
    pc.createDataChannel('probe');
    pc.onicecandidate = (e) => { if (e.candidate) log.push('candidate ' + e.candidate.candidate); };
    await pc.setLocalDescription(await pc.createOffer());
    await Promise.race([settle(4000), new Promise((r) => {
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); };
    })]);
    log.push('webrtc ' + pc.iceGatheringState);
    pc.close();
  } catch (e) { log.push('webrtc error ' + e); }
  for (const target of ['ws://' + bad + '/ws', 'ws://' + location.host + '/ws']) {
    await Promise.race([settle(3000), new Promise((r) => {
      try {
        const ws = new WebSocket(target);
        ws.binaryType = 'arraybuffer';
        const echoes = [];
        ws.onopen = () => {
          log.push('ws open ' + target);
          ws.send('probe-ws-text');
          ws.send(new Uint8Array([1, 2, 3, 250]).buffer);
        };
        ws.onmessage = (e) => {
          echoes.push(typeof e.data === 'string' ? 'text ' + e.data
            : 'binary ' + Array.from(new Uint8Array(e.data)).join(','));
          if (echoes.length === 2) {
            log.push('ws echo ' + echoes.join(' | '));
            ws.close(1000, 'probe done');
          }
        };
        ws.onclose = (e) => { log.push('ws closed ' + e.code + ' clean ' + e.wasClean); r(); };
        ws.onerror = () => { log.push('ws error ' + target); r(); };
      } catch (e) { log.push('ws refused ' + target); r(); }
    })]);
  }
  for (const target of ['http://' + bad + '/forbidden-fetch', '/allowed-fetch']) {
    try {
      const r = await fetch(target, {mode: 'no-cors', cache: 'no-store'});
      log.push('fetch ' + target + ' ' + r.status);
    } catch (e) { log.push('fetch error ' + target); }
  }
  log.push('beacon forbidden ' + navigator.sendBeacon('http://' + bad + '/forbidden-beacon', 'probe'));
  log.push('beacon allowed ' + navigator.sendBeacon('/allowed-beacon', 'probe-beacon-payload'));
  await settle(500);
  const done = document.createElement('article');
  done.id = 'done';
  done.textContent = log.join('\n');
  document.getElementById('out').replaceChildren(done);
})();
</script></body></html>
"""

CORS_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cross-origin probe</title></head>
<body><main id="out">Loading&#8230;</main>
<script>
(async function () {
  const api = new URLSearchParams(location.search).get('api');
  const out = document.getElementById('out');
  try {
    const simple = await (await fetch(api + '/api/simple')).json();
    const r = await fetch(api + '/api/items', {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-Probe': 'cors'},
      body: JSON.stringify({want: 'items'}),
    });
    const data = await r.json();
    const art = document.createElement('article');
    art.className = 'items';
    art.textContent = simple.greeting + ' ' + data.items.join(' ');
    out.replaceChildren(art);
  } catch (e) {
    out.textContent = 'The API could not be reached: ' + e;
  }
})();
</script></body></html>
"""

TICKER_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ticker</title></head>
<body><article id="story">TICKER_TOKEN</article><ul id="ticker"></ul>
<script>
setInterval(() => {
  const li = document.createElement('li');
  li.textContent = 'tick ' + Date.now();
  document.getElementById('ticker').prepend(li);
}, 100);
</script></body></html>
"""

SIMPLE_TOKEN = token("cors-simple", 1)
TICKER_TOKEN = token("ticker", 1)
ITEM_TOKENS = tuple(token("cors-item", n) for n in range(1, 4))


def _html(body: str) -> Reply:
    return Reply(headers=[("Content-Type", "text/html; charset=utf-8")], body=body.encode())


class ProbeSite:
    def __init__(self) -> None:
        self.websocket = WebSocketEcho()

    def __call__(self, req: Request) -> Reply:
        if req.path == "/ws":
            return self.websocket.handshake(req)
        if req.path == "/leak.html":
            return _html(LEAK_PAGE)
        if req.path == "/cors.html":
            return _html(CORS_PAGE)
        if req.path == "/ticker.html":
            return _html(TICKER_PAGE.replace("TICKER_TOKEN", TICKER_TOKEN))
        if req.path in ("/allowed-fetch", "/allowed-beacon"):
            return Reply(headers=[("Content-Type", "text/plain")], body=b"ok " + req.body)
        if req.path == "/robots.txt":
            return Reply(headers=[("Content-Type", "text/plain")], body=b"User-agent: *\n")
        return Reply(404, "Not Found", [("Content-Type", "text/plain")], b"not found")


class CorsApi:
    """A JSON API that lets any origin read it (CORS), with a preflight for ``/api/items``."""

    def __call__(self, req: Request) -> Reply:
        origin = req.headers.get("origin", "*")
        allow = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if req.method == "OPTIONS" and req.path == "/api/items":
            return Reply(
                204,
                "No Content",
                [
                    *allow,
                    ("Access-Control-Allow-Methods", "POST"),
                    ("Access-Control-Allow-Headers", "content-type, x-probe"),
                    ("Access-Control-Max-Age", "0"),
                ],
            )
        if req.method == "OPTIONS":
            return Reply(403, "Forbidden", [("Content-Type", "text/plain")], b"no preflight here")
        if req.path == "/api/simple" and req.method == "GET":
            return self._json({"greeting": SIMPLE_TOKEN}, allow)
        if req.path == "/api/items" and req.method == "POST":
            if json.loads(req.body or b"{}").get("want") != "items":
                return self._json({"error": "bad request"}, allow, 400)
            return self._json({"items": list(ITEM_TOKENS)}, allow)
        return self._json({"error": "not found"}, allow, 404)

    @staticmethod
    def _json(data: object, allow: list[tuple[str, str]], status: int = 200) -> Reply:
        return Reply(
            status,
            {200: "OK", 400: "Bad Request", 404: "Not Found"}[status],
            [("Content-Type", "application/json"), ("Cache-Control", "no-store"), *allow],
            json.dumps(data).encode(),
        )
