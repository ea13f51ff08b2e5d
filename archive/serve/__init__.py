"""The retrieval service (``attest serve``): CDX API, Memento, replay via pywb, search, web page."""
