#!/usr/bin/env python3
"""The authorization-code flow against a running oxidp, with authlib as the client.

authlib (an OAuth / OpenID Connect library written elsewhere) plays the relying party:
discovery, the authorization URL with PKCE S256, the code exchange with client_secret_basic,
ID token and access token verification against the JWKS, userinfo and refresh. A plain
requests.Session plays the browser: it follows the redirects by hand and fills in the login
and consent forms with their CSRF tokens.

ID tokens are verified the way authlib's own OpenID clients do it (joserfc, authlib's JOSE
library, then authlib.oidc.core.CodeIDToken); access tokens with authlib's RFC 9068 resource
server validator.

Prints one line per check, then "interop: N passed, M failed"; exits 1 on any failure.
The refresh-token reuse check expects the server's OXIDP_REFRESH_REUSE_GRACE (pass it with
--reuse-grace; 0 by default): with 0 a rotated token presented again must be refused at once.

    authlib_flow.py --issuer http://127.0.0.1:8080 --email E --password P \
        --client-id ID --client-secret SECRET [--redirect-uri URI] [--reuse-grace S]

Every option can come from the environment instead: INTEROP_ISSUER, INTEROP_EMAIL,
INTEROP_PASSWORD, INTEROP_CLIENT_ID, INTEROP_CLIENT_SECRET, INTEROP_REDIRECT_URI,
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
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

# authlib refuses plain-http endpoints unless told otherwise; this check runs on loopback.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.deprecate import AuthlibDeprecationWarning  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.oauth2 import rfc8414, rfc9207  # noqa: E402
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402
from joserfc.jws import JWSRegistry  # noqa: E402

warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)

SCOPE = "openid profile email offline_access"
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
    "authorize redirects to login",
    "login",
    "consent",
    "authorization response (state, iss)",
    "token exchange (authlib fetch_token, client_secret_basic, PKCE)",
    "ID token",
    "access token (RFC 9068)",
    "userinfo",
    "refresh rotates the refresh token (authlib refresh_token)",
    "rotated refresh token refused when reused",
    "reuse revokes the family (successor refused)",
    "replayed authorization code refused",
]


# ---------------------------------------------------------------- helpers


class FormReader(HTMLParser):
    """Collects hidden inputs and the text of elements whose class says 'error'."""

    def __init__(self):
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.errors: list[str] = []
        self._error_depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and (attributes.get("type") or "").lower() == "hidden":
            if attributes.get("name"):
                self.hidden[attributes["name"]] = attributes.get("value") or ""
        if self._error_depth:
            self._error_depth += 1
        elif "error" in (attributes.get("class") or "").split() or attributes.get("role") == "alert":
            self._error_depth = 1
            self.errors.append("")

    def handle_endtag(self, tag):
        if self._error_depth:
            self._error_depth -= 1

    def handle_data(self, data):
        if self._error_depth:
            self.errors[-1] += data


def read_form(resp: requests.Response) -> FormReader:
    reader = FormReader()
    reader.feed(resp.text)
    reader.close()
    return reader


def hidden_fields(resp: requests.Response, *names: str) -> dict[str, str]:
    reader = read_form(resp)
    missing = [name for name in names if not reader.hidden.get(name)]
    if missing:
        raise CheckFailed(f"{resp.url}: no hidden input {', '.join(missing)} in the page")
    return {name: reader.hidden[name] for name in names}


def describe(resp: requests.Response) -> str:
    """One line about an unexpected response, with the page's error message if any."""
    text = f"{resp.request.method} {strip_query(resp.url)} answered {resp.status_code}"
    if resp.headers.get("Location"):
        text += f" to {resp.headers['Location']}"
    if "html" in resp.headers.get("Content-Type", ""):
        errors = [" ".join(e.split()) for e in read_form(resp).errors if e.strip()]
        if errors:
            text += f" (page says: {'; '.join(errors)})"
    elif resp.text:
        text += f": {resp.text[:300]}"
    return text


def strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def location(resp: requests.Response) -> str:
    if resp.status_code not in (301, 302, 303, 307, 308) or not resp.headers.get("Location"):
        raise CheckFailed(f"expected a redirect: {describe(resp)}")
    return urljoin(resp.url, resp.headers["Location"])


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


# ---------------------------------------------------------------- token verification


def verify_id_token(id_token, keyset, metadata, args, params, original=None):
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
        "iss": {"essential": True, "value": args.issuer},
        "aud": {"essential": True, "value": args.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "auth_time": {"essential": True},
        "at_hash": {"essential": True},
        "azp": {"essential": True, "value": args.client_id},
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
    if aud != [args.client_id]:
        raise CheckFailed(f"ID token aud is {claims['aud']!r}, expected only {args.client_id!r}")
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


def verify_access_token(access_token, keyset, args, expected_sub):
    header_b64 = access_token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    if (header.get("typ") or "").lower() not in ("at+jwt", "application/at+jwt"):
        raise CheckFailed(f"access token header typ is {header.get('typ')!r}, expected 'at+jwt'")
    if header.get("alg") != "RS256":
        raise CheckFailed(f"access token alg is {header.get('alg')!r}, expected RS256")
    # aud defaults to the client_id for a client with no configured audience (SPEC §1)
    validator = AccessTokenValidator(args.issuer, args.client_id, keyset)
    try:
        claims = validator.authenticate_token(access_token)
        validator.validate_token(claims, [SCOPE], None)
    except Exception as error:
        cause = f" ({type(error.__cause__).__name__}: {error.__cause__})" if error.__cause__ else ""
        raise CheckFailed(f"authlib rejects the access token: {type(error).__name__}: {error}{cause}") from error
    if claims.get("client_id") != args.client_id:
        raise CheckFailed(f"access token client_id is {claims.get('client_id')!r}")
    if claims.get("sub") != expected_sub:
        raise CheckFailed(f"access token sub {claims.get('sub')!r} is not the ID token's {expected_sub!r}")
    return dict(claims)


# ---------------------------------------------------------------- the flow


def run(args, report: Report):
    issuer = args.issuer
    client = OAuth2Session(
        client_id=args.client_id,
        client_secret=args.client_secret,
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

    browser = requests.Session()

    # -- discovery
    def discovery():
        resp = client.get(f"{issuer}/.well-known/openid-configuration", withhold_token=True)
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        metadata = resp.json()
        if metadata.get("issuer") != issuer:
            raise CheckFailed(f"issuer is {metadata.get('issuer')!r}, expected exactly {issuer!r}")
        for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
            if not metadata.get(name):
                raise CheckFailed(f"no {name}")
        return metadata, f"issuer {issuer}"

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
        resp = client.get(f"{issuer}/.well-known/oauth-authorization-server", withhold_token=True)
        if resp.status_code != 200:
            raise CheckFailed(describe(resp))
        data = resp.json()
        try:
            rfc8414.AuthorizationServerMetadata(data).validate()
        except Exception as error:
            raise CheckFailed(f"authlib rejects the metadata: {error}") from error
        if data.get("issuer") != issuer:
            raise CheckFailed(f"issuer is {data.get('issuer')!r}")
        return "valid"

    report.check("RFC 8414 metadata", oauth_metadata, fatal=False)

    # -- JWKS
    def jwks():
        resp = client.get(metadata["jwks_uri"], withhold_token=True)
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

    # -- authorization request, login, consent
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
        resp = browser.get(authorize_url, allow_redirects=False, timeout=TIMEOUT)
        if resp.status_code != 302:
            raise CheckFailed(f"expected 302 to /login: {describe(resp)}")
        url = location(resp)
        if not same_endpoint(url, f"{issuer}/login") or not one(query(url), "request"):
            raise CheckFailed(f"expected a redirect to /login?request=…, got {url}")
        return url, "302 to /login?request=…"

    login_url = report.check("authorize redirects to login", authorize)

    def login():
        page = browser.get(login_url, allow_redirects=False, timeout=TIMEOUT)
        if page.status_code != 200:
            raise CheckFailed(describe(page))
        form = hidden_fields(page, "csrf", "request")
        form.update(email=args.email, password=args.password)
        resp = browser.post(f"{issuer}/login", data=form, allow_redirects=False, timeout=TIMEOUT)
        if resp.status_code != 303:
            raise CheckFailed(f"expected 303: {describe(resp)}")
        return location(resp), f"303 to {strip_query(location(resp))}"

    after_login = report.check("login", login)

    def consent():
        url = after_login
        # the next stop can also be /authorize again; follow plain GET redirects on the issuer
        for _ in range(5):
            if same_endpoint(url, args.redirect_uri):
                return url, "not asked (remembered or first-party)"
            if same_endpoint(url, f"{issuer}/consent"):
                break
            url = location(browser.get(url, allow_redirects=False, timeout=TIMEOUT))
        else:
            raise CheckFailed(f"no consent page nor callback after 5 redirects: {url}")
        page = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
        if page.status_code != 200:
            raise CheckFailed(describe(page))
        form = hidden_fields(page, "csrf", "request")
        form["decision"] = "approve"
        resp = browser.post(f"{issuer}/consent", data=form, allow_redirects=False, timeout=TIMEOUT)
        if resp.status_code != 303:
            raise CheckFailed(f"expected 303: {describe(resp)}")
        callback = location(resp)
        if not same_endpoint(callback, args.redirect_uri):
            raise CheckFailed(f"expected a redirect to {args.redirect_uri}, got {callback}")
        return callback, "approved, 303 to the redirect URI"

    callback = report.check("consent", consent)

    def authorization_response():
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

    code = report.check("authorization response (state, iss)", authorization_response)

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
        params = {"nonce": nonce, "client_id": args.client_id, "access_token": tokens["access_token"]}
        claims, _ = verify_id_token(tokens["id_token"], keyset, metadata, args, params)
        return claims, "signature, iss, aud, azp, exp, iat, nonce, at_hash, auth_time, amr"

    id_claims = report.check("ID token", id_token, fatal=False)
    if id_claims is None:
        id_claims = unverified_claims(tokens["id_token"])

    def access_token():
        verify_access_token(tokens["access_token"], keyset, args, id_claims.get("sub"))
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
        verify_access_token(token["access_token"], keyset, args, id_claims.get("sub"))
        detail = "new refresh token, new access token verified"
        if token.get("id_token"):
            params = {"client_id": args.client_id, "access_token": token["access_token"]}
            if "nonce" in unverified_claims(token["id_token"]):
                params["nonce"] = nonce
            verify_id_token(token["id_token"], keyset, metadata, args, params, original=id_claims)
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


def parse_args(argv):
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default=env.get("INTEROP_ISSUER") or env.get("OXIDP_ISSUER"))
    parser.add_argument("--email", default=env.get("INTEROP_EMAIL"))
    parser.add_argument("--password", default=env.get("INTEROP_PASSWORD"))
    parser.add_argument("--client-id", default=env.get("INTEROP_CLIENT_ID"))
    parser.add_argument("--client-secret", default=env.get("INTEROP_CLIENT_SECRET"))
    parser.add_argument(
        "--redirect-uri",
        default=env.get("INTEROP_REDIRECT_URI", "http://127.0.0.1:8765/callback"),
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
        for name in ("issuer", "email", "password", "client_id", "client_secret")
        if not getattr(args, name)
    ]
    if missing:
        parser.error(f"missing {', '.join(missing)} (or their INTEROP_* variables)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    report = Report(CHECKS)
    try:
        run(args, report)
    except Abort:
        pass
    except Exception:  # outside any check: still one failure, and the summary line
        report.failed += 1
        print(f"FAIL unexpected error between checks:\n{traceback.format_exc()}", flush=True)
    return report.summary()


if __name__ == "__main__":
    sys.exit(main())
