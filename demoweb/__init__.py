"""The demo web: generated news, NGO, social and HTTPS sites served on 127.0.0.1.

One deterministic web serves two purposes: ``attest demo`` captures it as the bundled demo (with
the demo case's pages, :mod:`demoweb.case`, on fixed ports), and the tests crawl it as their
fixture web, edge cases named (see each site's module). Nothing here ever touches the internet.

It is product code so that the product never imports ``tests/``, but it is not part of the
pipeline: only the CLI's demo command (which runs it as ``python -m demoweb``), ``scripts/``,
``bench/`` and ``tests/`` may import it. ``archive``, ``crawlers`` and ``dags`` never do, and it
imports nothing of attest's (both checked: ``[tool.importlinter]`` in ``pyproject.toml``).
"""

from demoweb.web import FixtureWeb

__all__ = ["FixtureWeb"]
