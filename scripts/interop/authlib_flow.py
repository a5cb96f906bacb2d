#!/usr/bin/env python3
"""Clients that register themselves and sign in with a real browser, against a running oxidp.

authlib (an OAuth / OpenID Connect library written elsewhere) plays the relying party, and
Debian's Chromium, driven headless by playwright (never a downloaded browser), plays the
person. Only an initial access token is given: the script registers its own clients through
the registration endpoint named by discovery (RFC 7591, a plain requests POST with the token as
Bearer; authlib has no client side for it) and then:

- checks the registration answer (client_id, client_secret, registration_access_token,
  registration_client_uri, client_id_issued_at), reads the registration back with its
  registration access token (RFC 7592), and sees registrations without or with a wrong initial
  access token refused with 401 and OAuth error JSON;
- a confidential client_secret_basic client: discovery, the JWKS, the authorization URL
  authlib builds with PKCE S256, opened in Chromium, which fills in the login form, approves
  consent and ends at the redirect URI (intercepted in the browser: nothing listens there);
  then authlib's code exchange, ID token and access token verification against the JWKS,
  userinfo, refresh rotation, reuse detection and code replay;
- a private_key_jwt client registered with its own generated key pair in jwks: a pushed
  authorization request (RFC 9126) authenticated with authlib's PrivateKeyJWT, /authorize with
  the request_uri in Chromium, and the code exchange with PrivateKeyJWT.

ID tokens are verified the way authlib's own OpenID clients do it (joserfc, authlib's JOSE
library, then authlib.oidc.core.CodeIDToken); access tokens with authlib's RFC 9068 resource
server validator.

Prints one line per check, then "interop: N passed, M failed"; exits 1 on any failure.
The refresh-token reuse check expects the server's OXIDP_REFRESH_REUSE_GRACE (pass it with
--reuse-grace; 0 by default): with 0 a rotated token presented again must be refused at once.
The initial access token must allow at least two registrations.

    authlib_flow.py --issuer http://127.0.0.1:8080 --email E --password P \
        --initial-token TOKEN [--redirect-uri URI] [--reuse-grace S] [--chromium PATH]

Every option can come from the environment instead: INTEROP_ISSUER, INTEROP_EMAIL,
INTEROP_PASSWORD, INTEROP_INITIAL_TOKEN, INTEROP_REDIRECT_URI, INTEROP_CHROMIUM,
and OXIDP_REFRESH_REUSE_GRACE.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import traceback
import warnings
from urllib.parse import parse_qs, parse_qsl, urlsplit

# authlib refuses plain-http endpoints unless told otherwise; this check runs on loopback.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.deprecate import AuthlibDeprecationWarning  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.oauth2 import rfc8414, rfc9207  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import ECKey, KeySet  # noqa: E402
from joserfc.jws import JWSRegistry  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)

SCOPE = "openid profile email offline_access"
JWT_CLIENT_SCOPE = "openid email"
JWT_CLIENT_ALG = "ES256"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
TIMEOUT = 10
LEEWAY = 5  # seconds of clock tolerance when checking exp / iat
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class CheckFailed(Exception):
    """A check's failure, with the message to print."""


class Abort(Exception):
    """A failed check that later checks depend on."""


class Report:
    def __init__(self, planned: list[str]):
        self.planned = planned
        self.passed = 0
        self.failed = 0
        self.done: list[str] = []

    def check(self, name: str, fn, fatal: bool = True):
        """Runs fn; prints 'ok' with its detail, or 'FAIL' with the reason.

        Returns fn's value (a (value, detail) pair or a detail string), or None when it
        failed and is not fatal. A fatal failure raises Abort.
        """
        assert name in self.planned, name
        self.done.append(name)
        try:
            result = fn()
        except CheckFailed as error:
            return self._fail(name, str(error), fatal)
        except OAuthError as error:
            return self._fail(name, f"authlib: {error.error}: {error.description}", fatal)
        except requests.RequestException as error:
            return self._fail(name, f"HTTP request failed: {error}", fatal)
        except PlaywrightError as error:
            return self._fail(name, f"browser: {error.message.strip()}", fatal)
        except Exception as error:  # an unexpected error is a failure too, with its trace
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            return self._fail(name, f"{detail}\n{traceback.format_exc()}", fatal)
        value, detail = result if isinstance(result, tuple) else (None, result)
        self.passed += 1
        print(f"ok   {name}" + (f": {detail}" if detail else ""), flush=True)
        return value

    def _fail(self, name: str, message: str, fatal: bool):
        self.failed += 1
        print(f"FAIL {name}: {message}", flush=True)
        if fatal:
            raise Abort(name)
        return None

    def summary(self) -> int:
        skipped = [name for name in self.planned if name not in self.done]
        if skipped:
            print(f"not run (they depend on a failed check): {', '.join(skipped)}", flush=True)
        print(f"interop: {self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 and not skipped else 1


CHECKS = [
    "discovery",
    "discovery metadata (authlib OpenIDProviderMetadata, RFC 9207)",
    "RFC 8414 metadata",
    "JWKS",
    "registration without an initial access token refused (401)",
    "registration with a wrong initial access token refused (401)",
    "registration of a client_secret_basic client (RFC 7591)",
    "registration read back (RFC 7592, registration access token)",
    "browser starts (headless Chromium)",
    "authorization URL opens the login page (browser)",
    "login (browser)",
    "consent (browser)",
    "authorization response (state, iss)",
    "token exchange (authlib fetch_token, client_secret_basic, PKCE)",
    "ID token",
    "access token (RFC 9068)",
    "userinfo",
    "refresh rotates the refresh token (authlib refresh_token)",
    "rotated refresh token refused when reused",
    "reuse revokes the family (successor refused)",
    "replayed authorization code refused",
    "registration of a private_key_jwt client with its own jwks (RFC 7591)",
    "pushed authorization request (RFC 9126, authlib PrivateKeyJWT)",
    "sign-in with the request_uri (browser: login, consent)",
    "authorization response for the private_key_jwt client (state, iss)",
    "token exchange (authlib fetch_token, private_key_jwt, PKCE)",
    "ID token of the private_key_jwt client",
    "token exchange for another audience (RFC 8693, authlib fetch_token, private_key_jwt)",
    "registration of a public device-flow client (RFC 7591)",
    "device authorization (RFC 8628)",
    "polling before approval: authorization_pending (authlib fetch_token)",
    "the person approves the device (browser: code link, login, confirmation)",
    "device code redeemed once (authlib fetch_token)",
]


# ---------------------------------------------------------------- helpers


def describe(resp: requests.Response) -> str:
    """One line about an unexpected response."""
    text = f"{resp.request.method} {strip_query(resp.url)} answered {resp.status_code}"
    if resp.headers.get("Location"):
        text += f" to {resp.headers['Location']}"
    if resp.text and "html" not in resp.headers.get("Content-Type", ""):
        text += f": {resp.text[:300]}"
    return text


def strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def same_endpoint(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise CheckFailed(f"parameter {name} appears {len(values)} times")
    return values[0]


def unverified_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def expect_error(fn, error: str, what: str):
    try:
        fn()
    except OAuthError as raised:
        if raised.error != error:
            raise CheckFailed(f"{what}: expected {error}, got {raised.error}: {raised.description}")
        return f"{raised.error} ({raised.description})" if raised.description else raised.error
    raise CheckFailed(f"{what}: the server accepted it (expected {error})")


def json_body(resp: requests.Response) -> dict:
    if "application/json" not in resp.headers.get("Content-Type", ""):
        raise CheckFailed(
            f"Content-Type is {resp.headers.get('Content-Type')!r}, expected JSON: {describe(resp)}"
        )
    try:
        body = resp.json()
    except ValueError as error:
        raise CheckFailed(f"the body is not JSON: {error}: {resp.text[:300]}") from error
    if not isinstance(body, dict):
        raise CheckFailed(f"the body is not a JSON object: {resp.text[:300]}")
    return body


def registration_post(endpoint: str, initial_token: str | None, metadata: dict) -> requests.Response:
    """POST {registration_endpoint} (RFC 7591 §3.1), with the initial access token as Bearer."""
    headers = {"Accept": "application/json"}
    if initial_token is not None:
        headers["Authorization"] = f"Bearer {initial_token}"
    return requests.post(endpoint, json=metadata, headers=headers, timeout=TIMEOUT)


def expect_unauthorized(resp: requests.Response, what: str) -> str:
    """A 401 with RFC 6749 §5.2-style error JSON and a Bearer challenge (RFC 6750 §3)."""
    if resp.status_code != 401:
        raise CheckFailed(f"{what}: expected 401: {describe(resp)}")
    body = json_body(resp)
    if body.get("error") != "invalid_token":
        raise CheckFailed(f"{what}: error is {body.get('error')!r}, expected 'invalid_token'")
    challenge = resp.headers.get("WWW-Authenticate", "")
    if not challenge.lower().startswith("bearer"):
        raise CheckFailed(f"{what}: WWW-Authenticate is {challenge!r}, expected a Bearer challenge")
    return f"401 {body['error']}, WWW-Authenticate: Bearer"


def check_registration(resp: requests.Response, issuer: str, metadata: dict, secret: bool) -> dict:
    """The RFC 7591 §3.2.1 answer to a successful registration of `metadata`."""
    if resp.status_code != 201:
        raise CheckFailed(f"expected 201: {describe(resp)}")
    if "no-store" not in resp.headers.get("Cache-Control", ""):
        raise CheckFailed(f"Cache-Control is {resp.headers.get('Cache-Control')!r}, expected no-store")
    body = json_body(resp)
    for name in ("client_id", "registration_access_token", "registration_client_uri"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise CheckFailed(f"{name} is {body.get(name)!r}, expected a non-empty string")
    if secret:
        if not isinstance(body.get("client_secret"), str) or len(body["client_secret"]) < 16:
            raise CheckFailed("no client_secret (or a short one) for a confidential client")
        # RFC 7591 §3.2.1: REQUIRED when a client_secret is issued; 0 means it never expires
        if not isinstance(body.get("client_secret_expires_at"), int):
            raise CheckFailed(f"client_secret_expires_at is {body.get('client_secret_expires_at')!r}")
    elif "client_secret" in body:
        raise CheckFailed(f"a client_secret was issued to a {metadata['token_endpoint_auth_method']} client")
    issued_at = body.get("client_id_issued_at")
    if not isinstance(issued_at, int) or abs(issued_at - time.time()) > 60:
        raise CheckFailed(f"client_id_issued_at is {issued_at!r}, not about now ({int(time.time())})")
    if not body["registration_client_uri"].startswith(f"{issuer}/"):
        raise CheckFailed(f"registration_client_uri {body['registration_client_uri']!r} is not on the issuer")
    for name in ("redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types"):
        if body.get(name) != metadata[name]:
            raise CheckFailed(f"{name} is {body.get(name)!r}, registered {metadata[name]!r}")
    if set((body.get("scope") or "").split()) != set(metadata["scope"].split()):
        raise CheckFailed(f"scope is {body.get('scope')!r}, registered {metadata['scope']!r}")
    return body


# ---------------------------------------------------------------- the browser


class Browser:
    """Debian's Chromium, headless, driven by playwright: the person who signs in.

    Each open() is a fresh browser context (no cookies: the login page is always shown). The
    browser's requests to the redirect URI are recorded (Chromium follows the server's 303
    there; nothing has to listen, the page then shows a connection error).
    """

    def __init__(self, executable: str, redirect_uri: str):
        self.redirect_uri = redirect_uri
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=executable, headless=True)
        except Exception:
            self._playwright.stop()
            raise
        self.version = self._browser.version
        self._context = None
        self.page = None
        self.callbacks: list[str] = []

    def open(self, url: str):
        """A fresh context and page at `url`; returns the page's final URL."""
        if self._context is not None:
            self._context.close()
        self.callbacks = []
        self._context = self._browser.new_context()
        self._context.set_default_timeout(TIMEOUT * 1000)
        self._context.on("request", self._request)
        self.page = self._context.new_page()
        self._navigate(lambda: self.page.goto(url))
        return self.page.url

    def _request(self, request):
        if same_endpoint(request.url, self.redirect_uri):
            self.callbacks.append(request.url)

    def _navigate(self, action):
        """Runs action, which navigates; a navigation that ends at the redirect URI is fine."""
        try:
            action()
        except PlaywrightError:
            if not self.callbacks:
                raise

    def _submit(self, selector: str):
        def click():
            with self.page.expect_navigation():
                self.page.click(selector)

        self._navigate(click)

    def page_error(self) -> str:
        """The text of the page's error message, if any (class 'error')."""
        errors = self.page.locator(".error")
        return "; ".join(" ".join(t.split()) for t in errors.all_inner_texts() if t.strip())

    def where(self) -> str:
        url = self.page.url
        error = self.page_error()
        title = self.page.title()
        return f"{strip_query(url)} ({title!r}{', page says: ' + error if error else ''})"

    def login(self, email: str, password: str):
        page = self.page
        page.fill('form[action="/login"] input[name="email"]', email)
        page.fill('form[action="/login"] input[name="password"]', password)
        self._submit('form[action="/login"] button[type="submit"]')
        return page.url

    def approve(self):
        self._submit('form[action="/consent"] button[name="decision"][value="approve"]')
        return self.page.url

    def submit_user_code(self):
        self._submit('form[action="/device"] button[type="submit"]')
        return self.page.url

    def allow_device(self):
        self._submit('form[action="/device/confirm"] button[name="decision"][value="approve"]')
        return self.page.url

    def close(self):
        try:
            if self._context is not None:
                self._context.close()
            self._browser.close()
        finally:
            self._playwright.stop()


def opened_login_page(browser: Browser, authorize_url: str, issuer: str) -> str:
    url = browser.open(authorize_url)
    if not same_endpoint(url, f"{issuer}/login") or not one(query(url), "request"):
        raise CheckFailed(f"expected the login page /login?request=…, the browser is at {browser.where()}")
    if browser.page.locator('form[action="/login"] input[name="email"]').count() != 1:
        raise CheckFailed(f"no email field in the login form at {browser.where()}")
    return f"{strip_query(url)}?request=…, title {browser.page.title()!r}"


def logged_in(browser: Browser, args, issuer: str) -> str:
    url = browser.login(args.email, args.password)
    if browser.callbacks:
        return f"signed in, at {strip_query(browser.callbacks[-1])} (no consent asked)"
    if same_endpoint(url, f"{issuer}/consent"):
        return "signed in, at the consent page"
    raise CheckFailed(f"after signing in the browser is at {browser.where()}")


def consented(browser: Browser, redirect_uri: str, client_name: str) -> tuple[str, str]:
    if browser.callbacks:
        return browser.callbacks[-1], "not asked (remembered or first-party)"
    if browser.page.locator('form[action="/consent"] button[value="approve"]').count() != 1:
        raise CheckFailed(f"no Allow button at {browser.where()}")
    if client_name not in browser.page.inner_text("body"):
        raise CheckFailed(f"the consent page does not name the registered client {client_name!r}")
    browser.approve()
    if not browser.callbacks:
        raise CheckFailed(f"after Allow the browser is at {browser.where()}, not {redirect_uri}")
    callback = browser.callbacks[-1]
    if not same_endpoint(callback, redirect_uri):
        raise CheckFailed(f"expected a redirect to {redirect_uri}, got {callback}")
    return callback, f"the page names {client_name!r}; Allow clicked, the browser went to the redirect URI"


def authorization_code(callback: str, state: str, issuer: str):
    params = query(callback)
    if one(params, "error"):
        raise CheckFailed(f"error={one(params, 'error')} {one(params, 'error_description') or ''}")
    if not one(params, "code"):
        raise CheckFailed(f"no code in {callback}")
    if one(params, "state") != state:
        raise CheckFailed(f"state {one(params, 'state')!r} is not the one sent")
    if one(params, "iss") != issuer:
        raise CheckFailed(f"iss is {one(params, 'iss')!r}, expected {issuer!r} (RFC 9207)")
    return one(params, "code"), "code, state matches, iss = issuer"


# ---------------------------------------------------------------- token verification


def verify_id_token(id_token, keyset, metadata, issuer, client_id, params, original=None):
    """Verifies an ID token as authlib's OpenID clients do, plus the claims oxidp promises.

    params: CodeIDToken's parameters (nonce, client_id, access_token). original: the first
    ID token's claims, for one returned by a refresh (OIDC Core §12.2).
    """
    algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    token = jwt.decode(
        id_token, keyset, registry=JWSRegistry(algorithms=algorithms, strict_check_header=False)
    )
    if token.header.get("alg") != "RS256":
        raise CheckFailed(f"ID token alg is {token.header.get('alg')!r}, expected RS256")
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "auth_time": {"essential": True},
        "at_hash": {"essential": True},
        "azp": {"essential": True, "value": client_id},
        "amr": {"essential": True},
    }
    if original is None or "nonce" in token.claims:
        options["nonce"] = {"essential": True}
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(leeway=LEEWAY)
    except Exception as error:
        raise CheckFailed(f"authlib rejects the ID token: {type(error).__name__}: {error}") from error
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if aud != [client_id]:
        raise CheckFailed(f"ID token aud is {claims['aud']!r}, expected only {client_id!r}")
    if "pwd" not in claims["amr"]:
        raise CheckFailed(f"ID token amr is {claims['amr']!r}, expected it to contain 'pwd'")
    if original is not None:
        for name in ("iss", "sub", "aud", "auth_time", "azp"):
            if claims.get(name) != original.get(name):
                raise CheckFailed(
                    f"refreshed ID token {name} {claims.get(name)!r} differs from the first "
                    f"ID token's {original.get(name)!r} (OIDC Core 12.2)"
                )
        if "nonce" in claims and claims["nonce"] != original.get("nonce"):
            raise CheckFailed("refreshed ID token carries a different nonce (OIDC Core 12.2)")
    return dict(claims), token.header


class AccessTokenValidator(JWTBearerTokenValidator):
    """authlib's RFC 9068 resource-server validator with the JWKS already fetched."""

    def __init__(self, issuer, resource_server, keyset):
        super().__init__(issuer=issuer, resource_server=resource_server)
        self.keyset = keyset

    def get_jwks(self):
        return self.keyset


def verify_access_token(access_token, keyset, issuer, client_id, expected_sub):
    header_b64 = access_token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    if (header.get("typ") or "").lower() not in ("at+jwt", "application/at+jwt"):
        raise CheckFailed(f"access token header typ is {header.get('typ')!r}, expected 'at+jwt'")
    if header.get("alg") != "RS256":
        raise CheckFailed(f"access token alg is {header.get('alg')!r}, expected RS256")
    # aud defaults to the client_id for a client with no configured audience (SPEC §1)
    validator = AccessTokenValidator(issuer, client_id, keyset)
    try:
        claims = validator.authenticate_token(access_token)
        validator.validate_token(claims, [SCOPE], None)
    except Exception as error:
        cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
        raise CheckFailed(f"authlib rejects the access token: {type(error).__name__}: {error}{cause}") from error
    if claims.get("client_id") != client_id:
        raise CheckFailed(f"access token client_id is {claims.get('client_id')!r}")
    if claims.get("sub") != expected_sub:
        raise CheckFailed(f"access token sub {claims.get('sub')!r} is not the ID token's {expected_sub!r}")
    return dict(claims)


# ---------------------------------------------------------------- the flows


def run(args, report: Report, closing: list):
    issuer = args.issuer
    anonymous = requests.Session()

    # -- discovery
    def discovery():
        resp = anonymous.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        metadata = resp.json()
        if metadata.get("issuer") != issuer:
            raise CheckFailed(f"issuer is {metadata.get('issuer')!r}, expected exactly {issuer!r}")
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "registration_endpoint",
            "pushed_authorization_request_endpoint",
        ):
            if not metadata.get(name):
                raise CheckFailed(f"no {name}")
        return metadata, f"issuer {issuer}, registration_endpoint {metadata['registration_endpoint']}"

    metadata = report.check("discovery", discovery)

    def discovery_valid():
        try:
            OpenIDProviderMetadata(metadata).validate(
                metadata_classes=[rfc9207.AuthorizationServerMetadata]
            )
        except Exception as error:
            raise CheckFailed(f"authlib rejects the metadata: {error}") from error
        wanted = {
            "response_types_supported": "code",
            "code_challenge_methods_supported": "S256",
            "token_endpoint_auth_methods_supported": "client_secret_basic",
            "id_token_signing_alg_values_supported": "RS256",
            "grant_types_supported": "refresh_token",
        }
        for name, value in wanted.items():
            if value not in (metadata.get(name) or []):
                raise CheckFailed(f"{name} is {metadata.get(name)!r}, without {value!r}")
        if "private_key_jwt" not in (metadata.get("token_endpoint_auth_methods_supported") or []):
            raise CheckFailed("token_endpoint_auth_methods_supported lacks private_key_jwt")
        signing = metadata.get("token_endpoint_auth_signing_alg_values_supported") or []
        if JWT_CLIENT_ALG not in signing:
            raise CheckFailed(
                f"token_endpoint_auth_signing_alg_values_supported {signing!r} lacks {JWT_CLIENT_ALG}"
            )
        if "plain" in (metadata.get("code_challenge_methods_supported") or []):
            raise CheckFailed("code_challenge_methods_supported offers 'plain'")
        if metadata.get("authorization_response_iss_parameter_supported") is not True:
            raise CheckFailed(
                "authorization_response_iss_parameter_supported is "
                f"{metadata.get('authorization_response_iss_parameter_supported')!r}: RFC 9207 §3 "
                "clients then do not check the iss the server sends"
            )
        return "valid"

    report.check("discovery metadata (authlib OpenIDProviderMetadata, RFC 9207)", discovery_valid, fatal=False)

    def oauth_metadata():
        resp = anonymous.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        data = resp.json()
        try:
            rfc8414.AuthorizationServerMetadata(data).validate()
        except Exception as error:
            raise CheckFailed(f"authlib rejects the metadata: {error}") from error
        if data.get("issuer") != issuer:
            raise CheckFailed(f"issuer is {data.get('issuer')!r}")
        if data.get("registration_endpoint") != metadata["registration_endpoint"]:
            raise CheckFailed(f"registration_endpoint is {data.get('registration_endpoint')!r}")
        return "valid"

    report.check("RFC 8414 metadata", oauth_metadata, fatal=False)

    # -- JWKS
    def jwks():
        resp = anonymous.get(metadata["jwks_uri"], timeout=TIMEOUT)
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        data = resp.json()
        keys = data.get("keys") or []
        if not keys:
            raise CheckFailed("no keys")
        for jwk in keys:
            private = [m for m in PRIVATE_JWK_MEMBERS if m in jwk]
            if private:
                raise CheckFailed(f"key {jwk.get('kid')!r} publishes private members {private}")
            if jwk.get("use") != "sig" or not jwk.get("alg") or not jwk.get("kid"):
                raise CheckFailed(f"key {jwk.get('kid')!r} lacks kid/alg/use=sig: {jwk}")
        keyset = KeySet.import_key_set(data)
        for key in keyset.keys:
            if key.kid != key.thumbprint():
                raise CheckFailed(f"kid {key.kid!r} is not the RFC 7638 thumbprint {key.thumbprint()!r}")
        return keyset, f"{len(keys)} key(s), kid = RFC 7638 thumbprint"

    keyset = report.check("JWKS", jwks)

    # -- registration (RFC 7591, RFC 7592)
    registration_endpoint = metadata["registration_endpoint"]
    basic_metadata = {
        "client_name": "authlib interop (client_secret_basic)",
        "redirect_uris": [args.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": SCOPE,
    }

    report.check(
        "registration without an initial access token refused (401)",
        lambda: expect_unauthorized(
            registration_post(registration_endpoint, None, basic_metadata), "no Authorization header"
        ),
        fatal=False,
    )
    report.check(
        "registration with a wrong initial access token refused (401)",
        lambda: expect_unauthorized(
            registration_post(registration_endpoint, args.initial_token + "x", basic_metadata),
            "a wrong initial access token",
        ),
        fatal=False,
    )

    def register_basic():
        resp = registration_post(registration_endpoint, args.initial_token, basic_metadata)
        body = check_registration(resp, issuer, basic_metadata, secret=True)
        return body, (
            f"201, client_id {body['client_id']}, client_secret, registration_access_token, "
            f"registration_client_uri, client_id_issued_at {body['client_id_issued_at']}"
        )

    registered = report.check("registration of a client_secret_basic client (RFC 7591)", register_basic)
    client_id = registered["client_id"]

    def read_back():
        uri = registered["registration_client_uri"]
        bearer = {"Authorization": f"Bearer {registered['registration_access_token']}"}
        resp = requests.get(uri, headers=bearer, timeout=TIMEOUT)
        if resp.status_code != 200:
            raise CheckFailed(f"with the registration access token: {describe(resp)}")
        body = json_body(resp)
        names = ("client_id", "redirect_uris", "token_endpoint_auth_method", "grant_types", "client_name")
        for name in names + ("registration_client_uri",):
            if body.get(name) != registered.get(name):
                raise CheckFailed(
                    f"{name} reads back as {body.get(name)!r}, registered {registered.get(name)!r}"
                )
        wrong = {"Authorization": f"Bearer {registered['registration_access_token']}x"}
        expect_unauthorized(
            requests.get(uri, headers=wrong, timeout=TIMEOUT), "GET with a wrong registration access token"
        )
        expect_unauthorized(requests.get(uri, timeout=TIMEOUT), "GET without a token")
        return "200 with the registered metadata; 401 without the token or with a wrong one"

    report.check("registration read back (RFC 7592, registration access token)", read_back, fatal=False)

    # -- the browser
    def start_browser():
        browser = Browser(args.chromium, args.redirect_uri)
        closing.append(browser.close)
        return browser, f"{args.chromium}, Chromium {browser.version}"

    browser = report.check("browser starts (headless Chromium)", start_browser)

    # -- the client_secret_basic client: authorization request, login, consent in the browser
    client = OAuth2Session(
        client_id=client_id,
        client_secret=registered["client_secret"],
        scope=SCOPE,
        redirect_uri=args.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        default_timeout=TIMEOUT,
    )
    token_responses: list[requests.Response] = []

    def keep_response(resp):
        token_responses.append(resp)
        return resp

    client.register_compliance_hook("access_token_response", keep_response)
    client.register_compliance_hook("refresh_token_response", keep_response)

    code_verifier = generate_token(48)
    nonce = generate_token(24)
    authorize_url, state = client.create_authorization_url(
        metadata["authorization_endpoint"],
        state=generate_token(24),
        code_verifier=code_verifier,
        nonce=nonce,
    )

    def authorize():
        params = query(authorize_url)
        if one(params, "code_challenge_method") != "S256" or not one(params, "code_challenge"):
            raise CheckFailed(f"authlib built no S256 challenge: {authorize_url}")
        return opened_login_page(browser, authorize_url, issuer)

    report.check("authorization URL opens the login page (browser)", authorize)
    report.check("login (browser)", lambda: logged_in(browser, args, issuer))
    callback = report.check(
        "consent (browser)", lambda: consented(browser, args.redirect_uri, basic_metadata["client_name"])
    )
    code = report.check(
        "authorization response (state, iss)", lambda: authorization_code(callback, state, issuer)
    )

    # -- tokens
    def exchange():
        token = client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            state=state,
            code_verifier=code_verifier,
        )
        resp = token_responses[-1]
        auth = resp.request.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            raise CheckFailed("authlib did not use client_secret_basic")
        if "no-store" not in resp.headers.get("Cache-Control", ""):
            raise CheckFailed(f"Cache-Control is {resp.headers.get('Cache-Control')!r}, expected no-store")
        if str(token.get("token_type", "")).lower() != "bearer":
            raise CheckFailed(f"token_type is {token.get('token_type')!r}")
        for name in ("access_token", "id_token", "refresh_token"):
            if not token.get(name):
                raise CheckFailed(f"no {name} in the token response (fields: {sorted(token)})")
        if not isinstance(token.get("expires_in"), int):
            raise CheckFailed(f"expires_in is {token.get('expires_in')!r}")
        if "scope" in token and set(token["scope"].split()) != set(SCOPE.split()):
            raise CheckFailed(f"granted scope {token['scope']!r}, asked {SCOPE!r}")
        return dict(token), "access, ID and refresh tokens"

    tokens = report.check("token exchange (authlib fetch_token, client_secret_basic, PKCE)", exchange)

    def id_token():
        params = {"nonce": nonce, "client_id": client_id, "access_token": tokens["access_token"]}
        claims, _ = verify_id_token(tokens["id_token"], keyset, metadata, issuer, client_id, params)
        return claims, "signature, iss, aud, azp, exp, iat, nonce, at_hash, auth_time, amr"

    id_claims = report.check("ID token", id_token, fatal=False)
    if id_claims is None:
        id_claims = unverified_claims(tokens["id_token"])

    def access_token():
        verify_access_token(tokens["access_token"], keyset, issuer, client_id, id_claims.get("sub"))
        return "typ at+jwt, RS256, signature, iss, aud, exp, iat, jti, client_id, scope, sub"

    report.check("access token (RFC 9068)", access_token, fatal=False)

    def userinfo():
        resp = client.get(metadata["userinfo_endpoint"])
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        info = resp.json()
        if info.get("sub") != id_claims.get("sub"):
            raise CheckFailed(f"sub {info.get('sub')!r} is not the ID token's {id_claims.get('sub')!r}")
        if info.get("email") != args.email:
            raise CheckFailed(f"email {info.get('email')!r}, expected {args.email!r}")
        return "sub equals the ID token's, email matches"

    report.check("userinfo", userinfo, fatal=False)

    # -- refresh
    first_refresh = tokens["refresh_token"]
    refreshed_at = [time.time()]

    def refresh():
        token = client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
        refreshed_at[0] = time.time()
        resp = token_responses[-1]
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        if not resp.json().get("refresh_token"):
            raise CheckFailed("no new refresh token in the response (no rotation)")
        if token["refresh_token"] == first_refresh:
            raise CheckFailed("the refresh token came back unchanged (no rotation)")
        if token["access_token"] == tokens["access_token"]:
            raise CheckFailed("the access token came back unchanged")
        verify_access_token(token["access_token"], keyset, issuer, client_id, id_claims.get("sub"))
        detail = "new refresh token, new access token verified"
        if token.get("id_token"):
            params = {"client_id": client_id, "access_token": token["access_token"]}
            if "nonce" in unverified_claims(token["id_token"]):
                params["nonce"] = nonce
            verify_id_token(
                token["id_token"], keyset, metadata, issuer, client_id, params, original=id_claims
            )
            detail += ", new ID token verified"
        info = client.get(metadata["userinfo_endpoint"])
        if info.status_code != 200 or info.json().get("sub") != id_claims.get("sub"):
            raise CheckFailed(f"userinfo with the new access token: {describe(info)}")
        return dict(token), detail

    refreshed = report.check("refresh rotates the refresh token (authlib refresh_token)", refresh)

    def reuse():
        # With grace 0 the rotated token must be refused at once (no window at all).
        since = time.time() - refreshed_at[0]
        outcome = expect_error(
            lambda: client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh),
            "invalid_grant",
            f"the rotated refresh token presented again {since:.2f} s after its rotation"
            f" (grace {args.reuse_grace} s)",
        )
        return f"{outcome}; presented again {since:.2f} s after rotation, grace {args.reuse_grace} s"

    report.check("rotated refresh token refused when reused", reuse)

    def family():
        return expect_error(
            lambda: client.refresh_token(
                metadata["token_endpoint"], refresh_token=refreshed["refresh_token"]
            ),
            "invalid_grant",
            "the successor refresh token after reuse of its predecessor",
        )

    report.check("reuse revokes the family (successor refused)", family, fatal=False)

    def code_replay():
        return expect_error(
            lambda: client.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            ),
            "invalid_grant",
            "the authorization code presented a second time",
        )

    report.check("replayed authorization code refused", code_replay, fatal=False)

    # -- the private_key_jwt client, with its own key pair, and a pushed authorization request
    private_key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": JWT_CLIENT_ALG}, auto_kid=True)
    jwt_metadata = {
        "client_name": "authlib interop (private_key_jwt)",
        "redirect_uris": [args.redirect_uri],
        "grant_types": ["authorization_code", TOKEN_EXCHANGE],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": JWT_CLIENT_ALG,
        "jwks": {"keys": [private_key.as_dict(private=False)]},
        "scope": JWT_CLIENT_SCOPE,
    }

    def register_jwt():
        resp = registration_post(registration_endpoint, args.initial_token, jwt_metadata)
        body = check_registration(resp, issuer, jwt_metadata, secret=False)
        if body.get("jwks") != jwt_metadata["jwks"]:
            raise CheckFailed(f"jwks reads back as {body.get('jwks')!r}")
        if body.get("token_endpoint_auth_signing_alg") != JWT_CLIENT_ALG:
            alg = body.get("token_endpoint_auth_signing_alg")
            raise CheckFailed(f"token_endpoint_auth_signing_alg is {alg!r}")
        return body, f"201, client_id {body['client_id']}, no client_secret, jwks with kid {private_key.kid}"

    jwt_registered = report.check(
        "registration of a private_key_jwt client with its own jwks (RFC 7591)", register_jwt
    )
    jwt_client_id = jwt_registered["client_id"]
    jwt_client = OAuth2Session(
        client_id=jwt_client_id,
        client_secret=private_key,
        scope=JWT_CLIENT_SCOPE,
        redirect_uri=args.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="private_key_jwt",
        default_timeout=TIMEOUT,
    )
    # No fixed endpoint: each assertion's aud is the endpoint it is sent to (PAR, then token).
    jwt_client.register_client_auth_method(
        PrivateKeyJWT(alg=JWT_CLIENT_ALG, headers={"kid": private_key.kid})
    )
    jwt_responses: list[requests.Response] = []
    jwt_client.register_compliance_hook("access_token_response", lambda r: jwt_responses.append(r) or r)

    jwt_verifier = generate_token(48)
    jwt_nonce = generate_token(24)
    pushed_url, jwt_state = jwt_client.create_authorization_url(
        metadata["authorization_endpoint"],
        state=generate_token(24),
        code_verifier=jwt_verifier,
        nonce=jwt_nonce,
    )

    def par():
        params = dict(parse_qsl(urlsplit(pushed_url).query))
        resp = jwt_client.post(
            metadata["pushed_authorization_request_endpoint"],
            data=params,
            auth=jwt_client.client_auth("private_key_jwt"),
            withhold_token=True,
        )
        sent = parse_qs(resp.request.body or "")
        if not sent.get("client_assertion"):
            raise CheckFailed("authlib sent no client_assertion")
        aud = unverified_claims(sent["client_assertion"][0]).get("aud")
        if resp.status_code != 201:
            raise CheckFailed(f"expected 201: {describe(resp)}")
        body = json_body(resp)
        request_uri = body.get("request_uri")
        # RFC 9126 §2.2: a URN (or a URL); oxidp's are urn:ietf:params:oauth:request_uri:…
        if not isinstance(request_uri, str) or not request_uri.startswith("urn:"):
            raise CheckFailed(f"request_uri is {request_uri!r}")
        if not isinstance(body.get("expires_in"), int) or body["expires_in"] <= 0:
            raise CheckFailed(f"expires_in is {body.get('expires_in')!r}")
        url = f"{metadata['authorization_endpoint']}?" + requests.compat.urlencode(
            {"client_id": jwt_client_id, "request_uri": request_uri}
        )
        return url, f"201, request_uri, expires_in {body['expires_in']} s; assertion aud {aud}"

    par_authorize_url = report.check("pushed authorization request (RFC 9126, authlib PrivateKeyJWT)", par)

    def jwt_sign_in():
        opened = opened_login_page(browser, par_authorize_url, issuer)
        logged_in(browser, args, issuer)
        callback, how = consented(browser, args.redirect_uri, jwt_metadata["client_name"])
        return callback, f"/authorize?client_id&request_uri → {opened.split(',')[0]} → consent: {how}"

    jwt_callback = report.check("sign-in with the request_uri (browser: login, consent)", jwt_sign_in)
    report.check(
        "authorization response for the private_key_jwt client (state, iss)",
        lambda: authorization_code(jwt_callback, jwt_state, issuer),
    )

    def jwt_exchange():
        token = jwt_client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=jwt_callback,
            state=jwt_state,
            code_verifier=jwt_verifier,
        )
        resp = jwt_responses[-1]
        sent = parse_qs(resp.request.body or "")
        if "Authorization" in resp.request.headers or not sent.get("client_assertion"):
            raise CheckFailed("authlib did not authenticate with a client assertion only")
        assertion = unverified_claims(sent["client_assertion"][0])
        if assertion.get("aud") != metadata["token_endpoint"]:
            raise CheckFailed(f"the assertion's aud is {assertion.get('aud')!r}")
        for name in ("access_token", "id_token"):
            if not token.get(name):
                raise CheckFailed(f"no {name} in the token response (fields: {sorted(token)})")
        if token.get("refresh_token"):
            raise CheckFailed("a refresh token for a client without the refresh_token grant")
        return dict(token), (
            f"access and ID tokens; assertion {JWT_CLIENT_ALG}, iss = sub = client_id, aud = token endpoint"
        )

    jwt_tokens = report.check("token exchange (authlib fetch_token, private_key_jwt, PKCE)", jwt_exchange)

    def jwt_id_token():
        params = {"nonce": jwt_nonce, "client_id": jwt_client_id, "access_token": jwt_tokens["access_token"]}
        claims, _ = verify_id_token(jwt_tokens["id_token"], keyset, metadata, issuer, jwt_client_id, params)
        if claims.get("sub") != id_claims.get("sub"):
            raise CheckFailed(f"sub {claims.get('sub')!r} is not the first client's {id_claims.get('sub')!r}")
        return "signature, iss, aud, azp, nonce, at_hash, amr; same sub as for the first client"

    report.check("ID token of the private_key_jwt client", jwt_id_token, fatal=False)

    # -- token exchange (RFC 8693): the private_key_jwt client trades its access token for one
    # meant for the first client (the server runs with OXIDP_TOKEN_EXCHANGE_AUDIENCES=registered-clients)
    def token_exchange():
        token = jwt_client.fetch_token(
            metadata["token_endpoint"],
            grant_type=TOKEN_EXCHANGE,
            subject_token=jwt_tokens["access_token"],
            subject_token_type=ACCESS_TOKEN_TYPE,
            audience=client_id,
        )
        sent = parse_qs(jwt_responses[-1].request.body or "")
        if sent.get("grant_type") != [TOKEN_EXCHANGE] or not sent.get("client_assertion"):
            raise CheckFailed(f"authlib sent {sorted(sent)}")
        if token.get("issued_token_type") != ACCESS_TOKEN_TYPE:
            raise CheckFailed(f"issued_token_type is {token.get('issued_token_type')!r}")
        if token.get("refresh_token"):
            raise CheckFailed("an exchange issued a refresh token")
        validator = AccessTokenValidator(issuer, client_id, keyset)
        try:
            claims = validator.authenticate_token(token["access_token"])
            validator.validate_token(claims, ["email"], None)
        except Exception as error:
            raise CheckFailed(f"authlib rejects the exchanged token: {type(error).__name__}: {error}") from error
        if claims.get("sub") != id_claims.get("sub") or claims.get("client_id") != jwt_client_id:
            raise CheckFailed(f"sub {claims.get('sub')!r}, client_id {claims.get('client_id')!r}")
        return f"aud = the first client, same sub, scope {claims.get('scope')!r}, issued_token_type access_token"

    report.check(
        "token exchange for another audience (RFC 8693, authlib fetch_token, private_key_jwt)",
        token_exchange,
        fatal=False,
    )

    # -- the device authorization grant (RFC 8628): a public client, as a TV or a CLI would be
    device_metadata = {
        "client_name": "authlib interop (device)",
        "grant_types": [DEVICE_CODE, "refresh_token"],
        "response_types": [],
        "token_endpoint_auth_method": "none",
        "scope": "openid email offline_access",
    }

    def register_device():
        resp = registration_post(registration_endpoint, args.initial_token, device_metadata)
        if resp.status_code != 201:
            raise CheckFailed(f"expected 201: {describe(resp)}")
        body = json_body(resp)
        if body.get("grant_types") != device_metadata["grant_types"] or body.get("client_secret"):
            raise CheckFailed(f"registered as {body}")
        return body["client_id"], f"201, client_id {body['client_id']}, public"

    device_client_id = report.check("registration of a public device-flow client (RFC 7591)", register_device)
    device_client = OAuth2Session(
        client_id=device_client_id, token_endpoint_auth_method="none", default_timeout=TIMEOUT
    )

    def device_authorization():
        endpoint = metadata.get("device_authorization_endpoint")
        if not endpoint:
            raise CheckFailed("discovery has no device_authorization_endpoint")
        resp = requests.post(
            endpoint, data={"client_id": device_client_id, "scope": device_metadata["scope"]}, timeout=TIMEOUT
        )
        if resp.status_code != 200:
            raise CheckFailed(f"expected 200: {describe(resp)}")
        body = json_body(resp)
        for name in ("device_code", "user_code", "verification_uri", "verification_uri_complete"):
            if not body.get(name):
                raise CheckFailed(f"no {name}: {body}")
        code = body["user_code"]
        if len(code) != 9 or code[4] != "-" or any(c not in "BCDFGHJKLMNPQRSTVWXZ" for c in code.replace("-", "")):
            raise CheckFailed(f"user_code {code!r} is not XXXX-XXXX of BCDFGHJKLMNPQRSTVWXZ")
        return body, f"user_code {code}, interval {body.get('interval')} s, expires_in {body.get('expires_in')} s"

    device = report.check("device authorization (RFC 8628)", device_authorization)

    def poll():
        return device_client.fetch_token(
            metadata["token_endpoint"], grant_type=DEVICE_CODE, device_code=device["device_code"]
        )

    polled = []

    def pending():
        polled.append(time.monotonic())
        expect_error(poll, "authorization_pending", "a poll before the person approved")
        return "authlib raised authorization_pending"

    report.check("polling before approval: authorization_pending (authlib fetch_token)", pending)

    def approve_device():
        browser.open(device["verification_uri_complete"])
        entered = browser.page.input_value('form[action="/device"] input[name="user_code"]')
        if entered.replace("-", "").upper() != device["user_code"].replace("-", ""):
            raise CheckFailed(f"the code link prefilled {entered!r}")
        browser.submit_user_code()
        if "/login" not in browser.page.url:
            raise CheckFailed(f"after the code the browser is at {browser.where()}")
        browser.login(args.email, args.password)
        if "/device/confirm" not in browser.page.url:
            raise CheckFailed(f"after signing in the browser is at {browser.where()}")
        text = browser.page.inner_text("body")
        if device_metadata["client_name"] not in text or device["user_code"] not in text:
            raise CheckFailed("the confirmation page does not name the client and the code")
        browser.allow_device()
        return "code link → entry form (prefilled) → login → confirmation naming client and code → Allow"

    report.check("the person approves the device (browser: code link, login, confirmation)", approve_device)

    def redeem_device():
        # A device polls no faster than the interval (else slow_down).
        wait = (polled[-1] if polled else 0) + int(device.get("interval") or 5) + 0.5 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        token = poll()
        if not token.get("access_token") or not token.get("refresh_token") or not token.get("id_token"):
            raise CheckFailed(f"fields: {sorted(token)}")
        claims = unverified_claims(token["id_token"])
        if claims.get("sub") != id_claims.get("sub") or claims.get("aud") != device_client_id:
            raise CheckFailed(f"ID token sub {claims.get('sub')!r}, aud {claims.get('aud')!r}")
        expect_error(poll, "invalid_grant", "a second redemption of the device code")
        return "access, refresh and ID tokens for the same person; the code then refused (invalid_grant)"

    report.check("device code redeemed once (authlib fetch_token)", redeem_device)


def parse_args(argv):
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default=env.get("INTEROP_ISSUER") or env.get("OXIDP_ISSUER"))
    parser.add_argument("--email", default=env.get("INTEROP_EMAIL"))
    parser.add_argument("--password", default=env.get("INTEROP_PASSWORD"))
    parser.add_argument(
        "--initial-token",
        default=env.get("INTEROP_INITIAL_TOKEN"),
        help="an initial access token for the registration endpoint (oxidp registration-token create)",
    )
    parser.add_argument(
        "--redirect-uri",
        default=env.get("INTEROP_REDIRECT_URI", "http://127.0.0.1:8765/callback"),
    )
    parser.add_argument(
        "--chromium",
        default=env.get("INTEROP_CHROMIUM", "/usr/bin/chromium"),
        help="the Chromium executable playwright drives (never a downloaded one)",
    )
    parser.add_argument(
        "--reuse-grace",
        type=int,
        default=int(env.get("OXIDP_REFRESH_REUSE_GRACE", "0")),
        help="the server's OXIDP_REFRESH_REUSE_GRACE in seconds",
    )
    args = parser.parse_args(argv)
    missing = [
        f"--{name.replace('_', '-')}"
        for name in ("issuer", "email", "password", "initial_token")
        if not getattr(args, name)
    ]
    if missing:
        parser.error(f"missing {', '.join(missing)} (or their INTEROP_* variables)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    report = Report(CHECKS)
    closing: list = []
    try:
        run(args, report, closing)
    except Abort:
        pass
    except Exception:  # outside any check: still one failure, and the summary line
        report.failed += 1
        print(f"FAIL unexpected error between checks:\n{traceback.format_exc()}", flush=True)
    finally:
        for close in closing:
            try:
                close()
            except Exception as error:  # the browser's end changes no check
                print(f"(closing the browser: {error})", flush=True)
    return report.summary()


if __name__ == "__main__":
    sys.exit(main())
