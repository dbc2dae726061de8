"""The agent's key-rotation API: ``GET /v1/keys`` and ``POST /v1/keys/{install,use,remove}``.

A change made on one agent spreads to the whole cluster by gossip
(:mod:`swimactors.membership.keys`); the body of a POST is ``{"key": "<base64>"}``.  Every
answer is this node's keyring: ``{"primary": id, "keys": [{"id", "key"}], "clock": n}``,
the keys themselves only to a request with the agent's bearer token (a GET needs none, and
the keys are the cluster's credentials).
"""

from __future__ import annotations

import json
from typing import Any

from ..membership.keys import KeyGossip
from ..security.keyring import KeyringError, encode_key, key_id
from .http import Request, Response, Router

__all__ = ["keyring_json", "keys_router"]


def keyring_json(keys: KeyGossip, secret: bool = False) -> dict[str, Any]:
    """The keyring as JSON: key ids, and the keys themselves when ``secret``."""
    ring = keys.keyring
    listed = [
        {"id": key_id(k).hex(), "key": encode_key(k)} if secret else {"id": key_id(k).hex()}
        for k in ring.keys
    ]
    return {
        "primary": ring.primary_id.hex(),
        "keys": listed,
        "clock": keys.clock,
        "plaintext": ring.plaintext,
    }


def keys_router(keys: KeyGossip, router: Router) -> Router:
    """Add the key routes for ``keys`` (a node's :attr:`~swimactors.membership.Node.keys`)."""

    async def listing(request: Request) -> Response:
        return Response.json(keyring_json(keys, router.authorized(request)))

    def change(operation: str) -> Any:
        async def handler(request: Request) -> Response:
            try:
                body = json.loads(request.body or b"{}")
                key = body["key"] if isinstance(body, dict) else None
                if not isinstance(key, str):
                    raise KeyringError('the body must be {"key": "<base64 key>"}')
                getattr(keys, operation)(key)
            except (ValueError, KeyError) as exc:  # KeyringError is a ValueError
                message = str(exc) if isinstance(exc, KeyringError) else "malformed JSON body"
                return Response.error(400, message)
            return Response.json(keyring_json(keys, secret=True))

        return handler

    router.add("GET", "/v1/keys", listing)
    for operation in ("install", "use", "remove"):
        router.add("POST", f"/v1/keys/{operation}", change(operation))
    return router
