"""A small OIDC issuer for the local stack (``ops/stack up --auth oidc``, issue 23).

Ops tooling, not the enforcement path: it stands in for Keycloak, Entra ID, Okta or SPIRE on
127.0.0.1 so the broker and every jitwatch process can run on short-lived JWTs. It serves

- ``/.well-known/openid-configuration``: issuer, ``jwks_uri``, ``token_endpoint``;
- ``/jwks``: the public keys (RS256) tokens are checked against, by ``kid``;
- ``/token``: the OAuth 2.0 client-credentials grant (RFC 6749 4.4), client id and secret
  in the form or in HTTP Basic; the token's ``sub`` is the client id (the Kafka principal).

State lives in one directory (mode 700): ``clients/<client id>.secret`` (mode 600; a client
is known while its file exists and its secret matches, read at every request, so deleting
the file revokes the client at once) and ``keys/<created>-<kid>.pem``. Tokens are signed with
the newest key once it has been published for ``--publish-delay`` seconds, so a verifier that
refreshes its JWKS sees a new ``kid`` before any token carries it; ``rotate`` adds a key and
drops all but the previous one, which stays published while its tokens live. PyJWT signs.

    python ops/oidc_issuer.py serve --dir D --port P [--audience kafka] [--ttl 300]
    python ops/oidc_issuer.py client --dir D NAME   # (re)create NAME's secret
    python ops/oidc_issuer.py revoke --dir D NAME
    python ops/oidc_issuer.py rotate --dir D
    python ops/oidc_issuer.py mint --dir D --sub NAME [--aud A] [--iss I] [--ttl S]  # tests
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import os
import secrets
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["main"]


def _keys(state: Path) -> list[Path]:
    """Key files, oldest first (names start with their creation time in ns)."""
    return sorted((state / "keys").glob("*.pem"))


def _kid(path: Path) -> str:
    return path.stem.split("-", 1)[1]


def new_key(state: Path) -> str:
    """Add a fresh RSA key (its ``kid`` random); keep it and the one before, drop older."""
    (state / "keys").mkdir(mode=0o700, parents=True, exist_ok=True)
    kid = secrets.token_hex(8)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = state / "keys" / f"{time.time_ns()}-{kid}.pem"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    tmp.chmod(0o600)
    tmp.rename(path)
    for old in _keys(state)[:-2]:
        old.unlink(missing_ok=True)
    return kid


def _signing_key(state: Path, publish_delay: float) -> Path:
    """The newest key published for at least ``publish_delay`` s (else the one before)."""
    keys = _keys(state)
    if not keys:
        raise RuntimeError(f"no key in {state / 'keys'}")
    ready = [k for k in keys if time.time() - k.stat().st_mtime >= publish_delay]
    return ready[-1] if ready else keys[0]


def jwks(state: Path) -> dict[str, Any]:
    """The public half of every kept key, as a JWK Set."""
    found = []
    for path in _keys(state):
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))  # type: ignore[arg-type]
        found.append({**jwk, "kid": _kid(path), "use": "sig", "alg": "RS256"})
    return {"keys": found}


def mint(state: Path, sub: str, *, issuer: str, audience: str, ttl: float, scope: str = "",
         publish_delay: float = 0.0) -> str:
    """A signed access token for ``sub`` (``ttl`` may be negative: an expired one)."""
    path = _signing_key(state, publish_delay)
    now = int(time.time())
    claims: dict[str, Any] = {"iss": issuer, "sub": sub, "aud": audience, "iat": now,
                              "nbf": now - 1 if ttl > 0 else now + int(ttl) - 1,
                              "exp": now + int(ttl), "jti": secrets.token_hex(8)}
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, path.read_bytes(), algorithm="RS256",
                      headers={"kid": _kid(path)})


def _client_ok(state: Path, client_id: str, secret: str) -> bool:
    if not client_id or "/" in client_id or client_id.startswith("."):
        return False
    try:
        expected = (state / "clients" / f"{client_id}.secret").read_text().strip()
    except OSError:
        return False
    return hmac.compare_digest(expected.encode(), secret.encode())


class _Handler(BaseHTTPRequestHandler):
    server: _Issuer

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request, never a secret or a token (neither is in the request line).
        sys.stderr.write(f"oidc-issuer: {self.address_string()} {format % args}\n")

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        issuer = self.server.issuer
        if self.path == "/.well-known/openid-configuration":
            self._reply(200, {"issuer": issuer, "jwks_uri": f"{issuer}/jwks",
                              "token_endpoint": f"{issuer}/token",
                              "grant_types_supported": ["client_credentials"],
                              "token_endpoint_auth_methods_supported": [
                                  "client_secret_post", "client_secret_basic"],
                              "id_token_signing_alg_values_supported": ["RS256"]})
        elif self.path == "/jwks":
            self._reply(200, jwks(self.server.state))
        else:
            self._reply(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if self.path != "/token":
            self._reply(404, {"error": "not_found"})
            return
        length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(
            self.rfile.read(length).decode(errors="replace")).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            try:
                pair = base64.b64decode(basic[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pair = ":"
            client_id, _, secret = (urllib.parse.unquote(p) for p in pair.partition(":"))
        if form.get("grant_type") != "client_credentials":
            self._reply(400, {"error": "unsupported_grant_type"})
            return
        if not _client_ok(self.server.state, client_id, secret):
            self._reply(401, {"error": "invalid_client",
                              "error_description": "unknown client or wrong secret"})
            return
        audience = form.get("audience") or self.server.audience
        if audience not in self.server.audiences:
            self._reply(400, {"error": "invalid_target",
                              "error_description": f"audience {audience!r} not served"})
            return
        token = mint(self.server.state, client_id, issuer=self.server.issuer,
                     audience=audience, ttl=self.server.ttl, scope=form.get("scope", ""),
                     publish_delay=self.server.publish_delay)
        self._reply(200, {"access_token": token, "token_type": "Bearer",
                          "expires_in": int(self.server.ttl),
                          **({"scope": form["scope"]} if form.get("scope") else {})})


class _Issuer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__((args.host, args.port), _Handler)
        self.state: Path = args.dir
        self.issuer: str = args.issuer or f"http://{args.host}:{args.port}"
        self.audience: str = args.audience
        self.audiences: set[str] = {args.audience, *args.extra_audience}
        self.ttl: float = args.ttl
        self.publish_delay: float = args.publish_delay


def main(argv: list[str] | None = None) -> int:
    """The issuer's commands (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "client", "revoke", "rotate", "mint"):
        sub = commands.add_parser(name)
        sub.add_argument("--dir", type=Path, required=True, help="the issuer's state")
        if name in ("client", "revoke"):
            sub.add_argument("name")
    serve = commands.choices["serve"]
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--issuer", help="the iss claim (default http://HOST:PORT)")
    serve.add_argument("--audience", default="kafka")
    serve.add_argument("--extra-audience", action="append", default=[],
                       help="another audience a client may ask for (tests)")
    serve.add_argument("--ttl", type=float, default=300.0, help="token life, s")
    serve.add_argument("--publish-delay", type=float, default=5.0,
                       help="s a new key is in the JWKS before tokens carry its kid")
    minted = commands.choices["mint"]
    minted.add_argument("--sub", required=True)
    minted.add_argument("--iss", required=True)
    minted.add_argument("--aud", default="kafka")
    minted.add_argument("--ttl", type=float, default=60.0)
    args = parser.parse_args(argv)
    state: Path = args.dir
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    if args.command == "client":
        (state / "clients").mkdir(mode=0o700, exist_ok=True)
        path = state / "clients" / f"{args.name}.secret"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(24))
        tmp.rename(path)
        print(path)
    elif args.command == "revoke":
        (state / "clients" / f"{args.name}.secret").unlink(missing_ok=True)
    elif args.command == "rotate":
        print(f"new key {new_key(state)}; JWKS now {[_kid(k) for k in _keys(state)]}")
    elif args.command == "mint":
        print(mint(state, args.sub, issuer=args.iss, audience=args.aud, ttl=args.ttl))
    else:
        if not _keys(state):
            new_key(state)
        server = _Issuer(args)
        print(f"oidc-issuer: {server.issuer} (audience {args.audience}, tokens "
              f"{args.ttl:g} s)", file=sys.stderr, flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
