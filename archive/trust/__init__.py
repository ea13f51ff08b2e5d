"""Signatures and trusted time: the organisation's signing key and the trust anchors that check
it (:mod:`.signing`), RFC 3161 timestamps from the configured TSAs (:mod:`.timestamps`).

Used by custody (sealed segments) and evidence (bundles). Imports only the shared vocabulary.
"""
