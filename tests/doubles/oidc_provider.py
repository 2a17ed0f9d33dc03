"""A local OpenID Connect provider for sign-in tests: no login form, no outside network.

It serves, on 127.0.0.1 in a daemon thread (ThreadingHTTPServer), the authorization code flow that
Streamlit's `st.login` runs through Authlib (https://openid.net/specs/openid-connect-core-1_0.html):

- `GET /.well-known/openid-configuration`: discovery (issuer, endpoints, RS256, PKCE S256);
- `GET /authorize`: signs in whoever the test chose (`sign_in_as`) at once and redirects back to the
  registered `redirect_uri` with `code` and `state`; an unknown client or redirect_uri is refused
  with 400 and no redirect, as a real provider must;
- `POST /token`: trades a code (single use, bound to its client, redirect_uri and PKCE challenge) for
  an RS256-signed ID token carrying the `nonce` of the request; the client authenticates with
  client_secret_basic or client_secret_post;
- `GET /jwks`: the public signing key;
- `GET /logout`: end_session_endpoint, redirects to `post_logout_redirect_uri`.

Knobs (`sign_in_as`): the user's email and name, extra claims (a forged `role: admin`), and a broken
ID token: `expired`, `foreign_key` (signed by a key the provider does not publish, under the published
key's kid), `audience` (issued to another client). `issued` lists every ID token's claims, so a test
can tell that a refused sign-in really reached the token exchange.

From a terminal, to try sign-in by hand:

    .venv/bin/python -m tests.doubles.oidc_provider --port 8900 --email you@example.com --app-port 8501
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "workbench-tests"
CLIENT_SECRET = "double-client-secret"
KID = "double-signing-key"


@dataclass(frozen=True)
class SignIn:
    """Who the next sign-ins are, and what is wrong with their ID token (nothing, by default)."""

    email: str
    name: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    """Extra claims put in the ID token as they are, e.g. {"role": "admin"}."""
    expired: bool = False
    """The ID token expired an hour ago (beyond any clock leeway)."""
    foreign_key: bool = False
    """Signed by another RSA key, under the kid of the published one."""
    audience: str | None = None
    """Issue the ID token to this client instead of the one that asked."""


@dataclass
class _Grant:
    sign_in: SignIn
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str | None
    issued_at: float


class OidcProvider:
    """The provider: start with `serve()` (or `with oidc_provider(...) as p:`), point the app at `metadata_url`."""

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                 redirect_uris: list[str] | None = None, port: int = 0) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris or [])
        """Where /authorize may send the browser back; empty allows any http://127.0.0.1 or localhost URI."""
        self._port = port
        self._key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self._foreign = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self._sign_in = SignIn(email="someone@example.com", name="Someone")
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self.issued: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def serve(self) -> OidcProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OidcProvider:
        return self.serve()

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def issuer(self) -> str:
        assert self._server is not None, "serve() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    # ---------------------------------------------------------------------------------- knobs

    def sign_in_as(self, email: str, name: str = "", **options: Any) -> SignIn:
        """Make every following /authorize sign in this person (options: claims, expired, foreign_key, audience)."""
        with self._lock:
            self._sign_in = SignIn(email=email, name=name or email.split("@")[0].title(), **options)
            return self._sign_in

    def auth_section(self, redirect_uri: str, cookie_secret: str) -> dict[str, str]:
        """The `[auth]` table of a secrets.toml that points an app at this provider."""
        return {
            "redirect_uri": redirect_uri,
            "cookie_secret": cookie_secret,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "server_metadata_url": self.metadata_url,
        }

    # -------------------------------------------------------------------------------- protocol

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """Return (status, Location or error text) for an authorization request."""
        if query.get("client_id") != self.client_id:
            return 400, f"unknown client_id {query.get('client_id')!r}"
        redirect_uri = query.get("redirect_uri", "")
        if not self.redirect_allowed(redirect_uri):
            return 400, f"redirect_uri {redirect_uri!r} is not registered for this client"
        if query.get("response_type") != "code":
            return _redirect_error(redirect_uri, query.get("state"), "unsupported_response_type")
        if "openid" not in query.get("scope", "").split():
            return _redirect_error(redirect_uri, query.get("state"), "invalid_scope")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(self._sign_in, self.client_id, redirect_uri, query.get("nonce"),
                                        query.get("code_challenge"), query.get("code_challenge_method"), time.time())
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        return 302, f"{redirect_uri}?{urlencode(params)}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """Return (status, JSON body) for a token request (authorization_code grant only)."""
        client_id, client_secret = _client_credentials(form, authorization)
        if client_id != self.client_id or not secrets.compare_digest(client_secret or "", self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or time.time() - grant.issued_at > 60:
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs from /authorize"}
        if grant.challenge is not None and not _pkce_ok(grant, form.get("code_verifier")):
            return 400, {"error": "invalid_grant", "error_description": "PKCE code_verifier does not match"}
        claims = self._id_claims(grant)
        key = self._foreign if grant.sign_in.foreign_key else self._key
        id_token = jwt.encode({"alg": "RS256", "kid": KID, "typ": "JWT"}, claims, key)
        with self._lock:
            self.issued.append(claims)
        return 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 3600,
                     "scope": "openid email profile", "id_token": id_token}

    def _id_claims(self, grant: _Grant) -> dict[str, Any]:
        now = int(time.time())
        issued = now - 7200 if grant.sign_in.expired else now
        who = grant.sign_in
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": hashlib.sha256(who.email.lower().encode()).hexdigest()[:24],
            "aud": who.audience or grant.client_id,
            "iat": issued,
            "auth_time": issued,
            "exp": issued + 3600,
            "email": who.email,
            "email_verified": True,
            "name": who.name,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(who.claims)
        return claims

    def redirect_allowed(self, uri: str) -> bool:
        if self.redirect_uris:
            return uri in self.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")


def _redirect_error(redirect_uri: str, state: str | None, error: str) -> tuple[int, str]:
    params = {"error": error, **({"state": state} if state else {})}
    return 302, f"{redirect_uri}?{urlencode(params)}"


def _client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str | None, str | None]:
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except ValueError:
            return None, None
        user, _, password = decoded.partition(":")
        return unquote_plus(user), unquote_plus(password)
    return form.get("client_id"), form.get("client_secret")


def _pkce_ok(grant: _Grant, verifier: str | None) -> bool:
    if not verifier:
        return False
    if grant.method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return secrets.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), grant.challenge or "")
    return secrets.compare_digest(verifier, grant.challenge or "")


class _Handler(BaseHTTPRequestHandler):
    owner: OidcProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not access logs
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/.well-known/openid-configuration":
            self._json(200, self.owner.metadata())
        elif parts.path == "/jwks":
            self._json(200, self.owner.jwks())
        elif parts.path == "/authorize":
            status, where = self.owner.authorize(query)
            if status == 302:
                self._redirect(where)
            else:
                self._text(status, where)
        elif parts.path == "/logout":
            back = query.get("post_logout_redirect_uri", "")
            if self.owner.redirect_allowed(back):
                self._redirect(back)
            else:
                self._text(200, "signed out")
        else:
            self._text(404, "not found")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/token":
            self._text(404, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        status, body = self.owner.token(form, self.headers.get("Authorization"))
        self._json(status, body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", "Cache-Control": "no-store"})

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def _redirect(self, location: str) -> None:
        self._send(302, b"", {"Location": location})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def oidc_provider(**options: Any) -> Iterator[OidcProvider]:
    with OidcProvider(**options) as provider:
        yield provider


def main() -> None:
    parser = argparse.ArgumentParser(description="A local OpenID Connect provider that signs in one chosen user.")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--email", required=True, help="who every sign-in is")
    parser.add_argument("--name", default="")
    parser.add_argument("--app-port", type=int, default=8501, help="the workbench's port, for the printed secrets")
    args = parser.parse_args()
    provider = OidcProvider(port=args.port).serve()
    provider.sign_in_as(args.email, args.name)
    section = provider.auth_section(f"http://localhost:{args.app_port}/oauth2callback", secrets.token_hex(32))
    print("Provider at", provider.issuer, "signing in", args.email)
    print("Put this in .streamlit/secrets.toml:\n\n[auth]")
    for key, value in section.items():
        print(f"{key} = {json.dumps(value)}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        provider.close()


if __name__ == "__main__":
    main()
