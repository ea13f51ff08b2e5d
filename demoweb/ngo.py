"""The fixture NGO site: paginated press-release listings in English and French, PDF attachments.

- ``/press/`` (``?page=N``, ``rel=next`` links): English releases ``/press/<n>.html``
- ``/fr/communiques/`` (``?page=N``): French releases with accents, ``/fr/communiques/<n>.html``
- ``/files/<n>.pdf``: the PDF attached to release ``n`` (linked from both languages)

With ``case_releases`` (the demo case's, :mod:`demoweb.case`), the site stands in for the
press pages of the case's NGO: its releases come first on page 1 of both listings, at
``/press/big-<slug>.html`` and ``/fr/communiques/big-<slug>.html``, with ``/files/big-<slug>.pdf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from demoweb.assets import pdf, png, sentences, token
from demoweb.case import NOTICE_EN, NOTICE_FR, CaseRelease
from demoweb.http import Reply, Request

PER_PAGE = 10
FRENCH = (
    "Communiqué : solidarité avec les peuples autochtones",
    "Déclaration à l'Assemblée générale",
    "Conférence « contre le néocolonialisme » à Genève",
    "Réunion de coopération parlementaire",
    "Vidéoconférence avec les mouvements d'outre-mer",
)


def _page(title: str, body: str, lang: str) -> bytes:
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<link rel="stylesheet" href="/assets/ngo.css"></head><body>'
        '<header><img src="/assets/logo.png" alt="logo"> <a href="/">Home</a> '
        '<a href="/press/">Press</a> <a href="/fr/communiques/">Communiqués</a></header>'
        f"{body}</body></html>\n"
    ).encode()


@dataclass
class NgoSite:
    releases: int = 25
    #: The demo case's releases (see :mod:`demoweb.case`); none by default.
    case_releases: tuple[CaseRelease, ...] = ()

    def release_token(self, n: int, lang: str = "en") -> str:
        return token(f"ngo-{lang}", n)

    def title(self, n: int, lang: str) -> str:
        if lang == "fr":
            return f"{FRENCH[n % len(FRENCH)]} (n° {n})"
        return f"Press release {n}: " + sentences(1000 + n, 1)[0][:50].rstrip(".")

    def release(self, n: int, lang: str) -> bytes:
        paras = "".join(f"<p>{escape(s)}</p>" for s in sentences(2000 + n, 8))
        if lang == "fr":
            paras += "<p>Élément clé : « coopération » et déjà vu — été, garçon, œuvre.</p>"
        label = "Télécharger le PDF" if lang == "fr" else "Download PDF"
        body = (
            f"<article><h1>{escape(self.title(n, lang))}</h1>"
            f'<p class="token">{self.release_token(n, lang)}</p>{paras}'
            f'<p><a href="/files/{n}.pdf">{label}</a></p></article>'
        )
        return _page(self.title(n, lang), body, lang)

    def case_release(self, r: CaseRelease, lang: str) -> bytes:
        fr = lang == "fr"
        title = r.title_fr if fr else r.title_en
        paras = "".join(f"<p>{escape(p)}</p>" for p in (r.fr if fr else r.en))
        other = (
            f'<a hreflang="en" href="{r.en_path}">English</a>'
            if fr
            else f'<a hreflang="fr" href="{r.fr_path}">Français</a>'
        )
        body = (
            f'<article class="case"><p class="demo-notice"><strong>'
            f"{escape(NOTICE_FR if fr else NOTICE_EN)}</strong></p>"
            f"<h1>{escape(title)}</h1>"
            f'<p class="dateline">Baku Initiative Group (BIG), <time datetime="{r.date}">'
            f"{r.date}</time> &middot; {other}</p>{paras}"
            f'<p><a href="{r.pdf_path}">{"Télécharger le PDF" if fr else "Download PDF"}</a></p>'
            "</article>"
        )
        return _page(title, body, lang)

    def listing(self, base: str, lang: str, page: int) -> bytes | None:
        numbers = list(range(self.releases, 0, -1))
        chunk = numbers[(page - 1) * PER_PAGE : page * PER_PAGE]
        if not chunk and not (page == 1 and self.case_releases):
            return None
        prefix = "/fr/communiques/" if lang == "fr" else "/press/"
        items = "".join(
            f'<li><a href="{prefix}{n}.html">{escape(self.title(n, lang))}</a></li>' for n in chunk
        )
        if page == 1:
            items = (
                "".join(
                    f'<li><a href="{r.fr_path if lang == "fr" else r.en_path}">'
                    f"{escape(r.title_fr if lang == 'fr' else r.title_en)}</a> ({r.date})</li>"
                    for r in sorted(self.case_releases, key=lambda r: r.date, reverse=True)
                )
                + items
            )
        nav = ""
        if len(numbers) > page * PER_PAGE:
            nav = f'<a rel="next" class="next" href="{base}?page={page + 1}">{"Suivant" if lang == "fr" else "Next"}</a>'
        heading = "Communiqués de presse" if lang == "fr" else "Press releases"
        return _page(
            heading, f'<h1>{heading}</h1><ul class="releases">{items}</ul><nav>{nav}</nav>', lang
        )

    def all_paths(self) -> list[str]:
        pages = (self.releases + PER_PAGE - 1) // PER_PAGE
        paths = [
            "/",
            "/robots.txt",
            "/assets/ngo.css",
            "/assets/logo.png",
            "/press/",
            "/fr/communiques/",
        ]
        paths += [f"/press/?page={p}" for p in range(2, pages + 1)]
        paths += [f"/fr/communiques/?page={p}" for p in range(2, pages + 1)]
        for n in range(1, self.releases + 1):
            paths += [f"/press/{n}.html", f"/fr/communiques/{n}.html", f"/files/{n}.pdf"]
        for r in self.case_releases:
            paths += [r.en_path, r.fr_path, r.pdf_path]
        return paths

    def __call__(self, req: Request) -> Reply:
        path = req.path
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/":
            body = (
                "<h1>Fixture NGO</h1><p>An organisation that publishes press releases.</p>"
                '<p><a href="/press/">Press releases</a> | <a href="/fr/communiques/">Communiqués</a></p>'
            )
            if self.case_releases:
                body += (
                    '<p class="demo-notice">In attest\'s demo case this site stands in for the '
                    "press pages of the Baku Initiative Group (BIG); every BIG release on it is "
                    "a fictional demo reproduction.</p>"
                )
            return Reply(headers=html, body=_page("Fixture NGO", body, "en"))
        if path == "/robots.txt":
            return Reply(
                headers=[("Content-Type", "text/plain")], body=b"User-agent: *\nAllow: /\n"
            )
        if path == "/assets/ngo.css":
            return Reply(
                headers=[("Content-Type", "text/css")], body=b"body{margin:2em}h1{color:#234}\n"
            )
        if path == "/assets/logo.png":
            return Reply(headers=[("Content-Type", "image/png")], body=png(4242, 32, 32))
        for prefix, lang in (("/press/", "en"), ("/fr/communiques/", "fr")):
            if path == prefix:
                page = int(req.query.get("page", ["1"])[0] or 1)
                listing = self.listing(prefix, lang, page)
                if listing is None:
                    break
                return Reply(headers=html, body=listing)
            if path.startswith(prefix) and path.endswith(".html"):
                try:
                    n = int(path[len(prefix) : -5])
                except ValueError:
                    break
                if 1 <= n <= self.releases:
                    return Reply(headers=html, body=self.release(n, lang))
        for r in self.case_releases:
            if path in (r.en_path, r.fr_path):
                return Reply(
                    headers=html, body=self.case_release(r, "fr" if path == r.fr_path else "en")
                )
            if path == r.pdf_path:
                text = f"{r.title_en} ({r.date}). Fictional demo reproduction."
                return Reply(
                    headers=[("Content-Type", "application/pdf")], body=pdf(r.title_en, text)
                )
        if path.startswith("/files/") and path.endswith(".pdf"):
            try:
                n = int(path[len("/files/") : -4])
            except ValueError:
                n = 0
            if 1 <= n <= self.releases:
                return Reply(
                    headers=[("Content-Type", "application/pdf")],
                    body=pdf(f"Release {n}", f"{token('ngo-pdf', n)} press release {n}"),
                )
        return Reply(404, "Not Found", [("Content-Type", "text/html")], b"<h1>404</h1>")
