"""The fixture web: deterministic news, NGO and HTTPS sites served on 127.0.0.1.

The tests crawl it; ``attest demo`` serves the same web as the bundled demo. Nothing here ever
touches the internet.
"""

from demoweb.web import FixtureWeb

__all__ = ["FixtureWeb"]
