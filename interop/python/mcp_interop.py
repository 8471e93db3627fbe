#!/usr/bin/env python3
"""Interop cells for the official Python MCP SDK (`mcp`, 1.x and 2.x) against this stack.

Each cell opens one fresh SDK session whose only OAuth logic is the SDK's own
`OAuthClientProvider`; this script supplies just what a host application must:
token storage, client metadata, and the redirect/callback handlers. The redirect
handler plays the browser: it walks the authorization URL through the login and
consent pages over plain HTTP (cookies kept, redirects not followed) and hands the
resulting code, state and iss to the SDK.

Usage: mcp_interop.py AS_BASE_URL RS_MCP_URL [--modes m1,m2,...]
Prints one JSON line per cell on stdout; exits 1 if any cell failed.
"""

from __future__ import annotations

import argparse
import html.parser
import http.cookiejar
import http.server
import importlib.metadata
import json
import logging
import os
import re
import socketserver
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import anyio

MCP_VERSION = importlib.metadata.version("mcp")
MAJOR = int(MCP_VERSION.split(".")[0])

if MAJOR >= 2:
    import httpx2 as httpx_mod
    from mcp import Client
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
else:
    import httpx as httpx_mod
    from mcp import ClientSession
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client

from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

MODES = ["dcr-public", "dcr-client_secret_basic", "dcr-client_secret_post", "cimd", "preregistered", "step-up", "gateway-stdio", "gateway-http"]
USERNAME = os.environ.get("INTEROP_USERNAME", "testuser")
PASSWORD = os.environ.get("INTEROP_PASSWORD", "testpass")
# Sign in through this upstream provider's "Continue with" link instead of the password form.
UPSTREAM = os.environ.get("INTEROP_UPSTREAM", "")
# The local user's id the profile tool must name (a user linked through an upstream).
EXPECT_SUB = os.environ.get("INTEROP_EXPECT_SUB", "")
# The endpoint is the gateway in front of server-everything: exercise that server instead.
GATEWAY = os.environ.get("INTEROP_GATEWAY", "") == "everything"
PREREGISTERED_CLIENT_ID = os.environ.get("INTEROP_PREREGISTERED_CLIENT_ID", "mcp-test-client")
CELL_TIMEOUT = float(os.environ.get("INTEROP_CELL_TIMEOUT", "60"))
# Longest access-token lifetime the refresh step will wait out.
MAX_REFRESH_WAIT = float(os.environ.get("INTEROP_MAX_REFRESH_WAIT", "30"))
# mcp 2.x connect mode: "auto" (SDK default), "legacy" (initialize only) or a protocol version.
V2_CONNECT_MODE = os.environ.get("INTEROP_V2_MODE", "auto")
# Nothing listens here: the browser stand-in stops at the redirect and reads code/state
# from its Location. Loopback redirect URIs match on any port.
REDIRECT_URI = "http://127.0.0.1:47613/callback"
# A certificate (and its key) for 127.0.0.1 to serve the CIMD document over https with, e.g. from
# interop/test-ca.sh; the stack must trust its issuer (SSL_CERT_FILE). Without them the document
# is served over http, which the SDK refuses.
CIMD_CERT = os.environ.get("INTEROP_CIMD_CERT", "")
CIMD_KEY = os.environ.get("INTEROP_CIMD_KEY", "")

log = logging.getLogger("interop")


class CellFailure(Exception):
    pass


class Unsupported(Exception):
    pass


def require(cond: bool, what: str) -> None:
    if not cond:
        raise CellFailure(what)


# --------------------------------------------------------------------------- storage


class MemoryStorage:
    """The SDK's TokenStorage protocol, keeping every token it was handed so a refresh can be seen."""

    def __init__(self, client_info: OAuthClientInformationFull | None = None):
        self.tokens: OAuthToken | None = None
        self.client_info = client_info
        self.history: list[tuple[float, OAuthToken]] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.history.append((time.time(), tokens))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


# --------------------------------------------------------------------------- browser stand-in


class _FormParser(html.parser.HTMLParser):
    """Collects the hidden inputs of each form by form id (HTMLParser unescapes attribute values)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = a.get("id", "")
            self.forms.setdefault(self._current, {})
        elif tag == "input" and self._current is not None and a.get("type") == "hidden":
            self.forms[self._current][a.get("name", "")] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Response:
    status: int
    location: str | None
    body: str


class Browser:
    """A cookie-keeping HTTP user agent without JavaScript that never follows redirects."""

    def __init__(self) -> None:
        # Everything is on loopback: a proxy from the environment must not intercept it.
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(self, url: str, form: dict[str, str] | None = None) -> Response:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, headers={"Accept": "text/html"})
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=15) as r:
                return Response(r.status, r.headers.get("Location"), r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers.get("Location"), e.read().decode("utf-8", "replace"))


def _text_excerpt(body: str, limit: int = 200) -> str:
    import re

    text = re.sub(r"<[^>]+>", " ", body)
    return " ".join(text.split())[:limit]


@dataclass
class Authorization:
    url: str
    scope_requested: str | None
    code: str | None = None
    state: str | None = None
    iss: str | None = None
    error: str | None = None


def walk_authorization(auth_url: str, redirect_uri: str) -> Authorization:
    """Drives login and consent for `auth_url` the way a person with a browser would."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(auth_url).query))
    result = Authorization(url=auth_url, scope_requested=query.get("scope"))
    target = urllib.parse.urlsplit(redirect_uri)
    browser = Browser()
    url, form = auth_url, None
    for _ in range(16):
        resp = browser.request(url, form)
        if resp.status in (301, 302, 303, 307, 308):
            require(resp.location is not None, f"{resp.status} without Location from {url!r}")
            url, form = urllib.parse.urljoin(url, resp.location), None
            parts = urllib.parse.urlsplit(url)
            if (parts.scheme, parts.netloc, parts.path) == (target.scheme, target.netloc, target.path):
                params = dict(urllib.parse.parse_qsl(parts.query))
                result.code = params.get("code")
                result.state = params.get("state")
                result.iss = params.get("iss")
                if "error" in params:
                    result.error = f"{params['error']}: {params.get('error_description', '')}"
                return result
            continue
        require(resp.status == 200, f"authorization walk: {resp.status} at {url!r}: {_text_excerpt(resp.body)}")
        parser = _FormParser()
        parser.feed(resp.body)
        start = UPSTREAM and re.search(rf'href="(/federation/{re.escape(UPSTREAM)}/start[^"]*)"', resp.body)
        if start and "consent-form" not in parser.forms:
            # "Continue with …": the provider signs the person in and sends them back.
            url, form = urllib.parse.urljoin(url, html.unescape(start.group(1))), None
            continue
        if "login-form" in parser.forms:
            hidden = parser.forms["login-form"]
            url = urllib.parse.urljoin(url, "/login")
            form = {"username": USERNAME, "password": PASSWORD}
        elif "consent-form" in parser.forms:
            hidden = parser.forms["consent-form"]
            url = urllib.parse.urljoin(url, "/consent")
            form = {"decision": "approve"}
        else:
            raise CellFailure(f"authorization walk: unexpected page at {url!r}: {_text_excerpt(resp.body)}")
        form.update(csrf_token=hidden.get("csrf_token", ""), request=hidden.get("request", ""))
    raise CellFailure("authorization walk: too many steps")


# --------------------------------------------------------------------------- CIMD document


class MetadataDocumentServer:
    """Serves one client ID metadata document on a loopback port: over https when
    INTEROP_CIMD_CERT and INTEROP_CIMD_KEY name a certificate for 127.0.0.1 that the stack was
    started trusting (SSL_CERT_FILE pointing at its CA), over http (which the stack fetches with
    AUTHZ_CIMD_ALLOW_LOOPBACK) otherwise."""

    def __init__(self, redirect_uri: str):
        doc_holder: dict[str, bytes] = {}
        server = self
        self.fetches = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/oauth/client-metadata.json":
                    self.send_error(404)
                    return
                body = doc_holder["doc"]
                server.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("cimd document server: " + fmt, *args)

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if CIMD_CERT and CIMD_KEY:
            import ssl

            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(CIMD_CERT, CIMD_KEY)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/oauth/client-metadata.json"
        self.document = {
            "client_id": self.url,
            "client_name": f"python-mcp {MCP_VERSION} interop (CIMD)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        doc_holder["doc"] = json.dumps(self.document).encode()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "MetadataDocumentServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- one cell


@dataclass
class Trace:
    entries: list[dict[str, Any]] = field(default_factory=list)

    async def on_response(self, response: Any) -> None:
        req = response.request
        entry: dict[str, Any] = {"method": req.method, "url": str(req.url), "path": req.url.path, "status": response.status_code}
        if response.status_code in (401, 403):
            entry["www_authenticate"] = response.headers.get("WWW-Authenticate")
        if req.url.path.endswith("/token"):
            try:
                form = dict(urllib.parse.parse_qsl(req.content.decode()))
            except Exception:
                form = {}
            entry["grant_type"] = form.get("grant_type")
            entry["scope"] = form.get("scope")
            entry["resource"] = form.get("resource")
            entry["client_secret_in_body"] = "client_secret" in form
            auth = req.headers.get("Authorization", "")
            entry["basic_auth"] = auth.lower().startswith("basic ")
        if req.url.path.endswith("/register"):
            try:
                entry["request"] = json.loads(req.content.decode())
            except Exception:
                pass
        self.entries.append(entry)
        log.debug("trace: %s %s -> %s", req.method, req.url, response.status_code)

    def find(self, method: str, path_suffix: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.entries
            if e["method"] == method and e["path"].endswith(path_suffix) and all(e.get(k) == v for k, v in match.items())
        ]


class Cell:
    def __init__(self, as_url: str, rs_url: str, mode: str):
        self.as_url = as_url.rstrip("/")
        self.rs_url = rs_url
        self.mode = mode
        self.trace = Trace()
        self.authorizations: list[Authorization] = []
        self.narrow_next_scope: str | None = None
        self.redirect_uri = REDIRECT_URI
        self.handshake = ""
        self.cimd_doc: MetadataDocumentServer | None = None
        # The gateway modes: the endpoint is the gateway in front of server-everything.
        self.gateway = GATEWAY or mode.startswith("gateway-")

    # The two handlers the SDK calls; the shapes differ between 1.x and 2.x.
    async def redirect_handler(self, authorization_url: str) -> None:
        url = authorization_url
        if self.narrow_next_scope is not None:
            # The person grants less than the client asked for (RFC 6749 §3.3 lets the
            # server issue a narrower scope); the SDK is not told.
            parts = urllib.parse.urlsplit(url)
            q = urllib.parse.parse_qsl(parts.query)
            q = [(k, self.narrow_next_scope if k == "scope" else v) for k, v in q]
            url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))
            self.narrow_next_scope = None
        log.info("[%s] authorization request: %s", self.mode, url)
        auth = await anyio.to_thread.run_sync(walk_authorization, url, self.redirect_uri)
        auth.scope_requested = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorization_url).query)).get("scope")
        self.authorizations.append(auth)
        if auth.error:
            raise CellFailure(f"authorization redirect carried error {auth.error}")

    async def callback_handler(self) -> Any:
        auth = self.authorizations[-1]
        if MAJOR >= 2:
            return AuthorizationCodeResult(code=auth.code or "", state=auth.state, iss=auth.iss)
        return auth.code or "", auth.state

    def client_metadata(self, auth_method: str | None) -> OAuthClientMetadata:
        return OAuthClientMetadata(
            client_name=f"python-mcp {MCP_VERSION} interop ({self.mode})",
            redirect_uris=[self.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method=auth_method,
        )

    def make_provider(self, storage: MemoryStorage, metadata: OAuthClientMetadata, cimd_url: str | None = None) -> Any:
        kwargs: dict[str, Any] = {}
        if cimd_url is not None:
            kwargs["client_metadata_url"] = cimd_url
        return OAuthClientProvider(
            server_url=self.rs_url,
            client_metadata=metadata,
            storage=storage,
            redirect_handler=self.redirect_handler,
            callback_handler=self.callback_handler,
            **kwargs,
        )

    async def run(self) -> str:
        if self.mode.startswith("dcr-"):
            method = {"dcr-public": "none"}.get(self.mode, self.mode[len("dcr-") :])
            storage = MemoryStorage()
            provider = self.make_provider(storage, self.client_metadata(method))
            return await self.session(provider, storage, expect_registration=method)
        if self.mode == "preregistered":
            info = OAuthClientInformationFull(
                client_id=PREREGISTERED_CLIENT_ID,
                redirect_uris=[self.redirect_uri],
                token_endpoint_auth_method="none",
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            )
            storage = MemoryStorage(client_info=info)
            provider = self.make_provider(storage, self.client_metadata("none"))
            return await self.session(provider, storage, expect_registration=None)
        if self.mode == "step-up":
            storage = MemoryStorage()
            provider = self.make_provider(storage, self.client_metadata("none"))
            self.narrow_next_scope = "mcp:read"
            return await self.session(provider, storage, expect_registration="none", step_up=True)
        if self.mode == "cimd":
            return await self.run_cimd()
        if self.mode.startswith("gateway-"):
            storage = MemoryStorage()
            provider = self.make_provider(storage, self.client_metadata("none"))
            return await self.session(provider, storage, expect_registration="none")
        raise ValueError(self.mode)

    async def run_cimd(self) -> str:
        with MetadataDocumentServer(self.redirect_uri) as doc:
            self.cimd_doc = doc
            storage = MemoryStorage()
            try:
                provider = self.make_provider(storage, self.client_metadata("none"), cimd_url=doc.url)
            except ValueError as e:
                # The SDK's constructor accepts only https document URLs: without
                # INTEROP_CIMD_CERT the document is served over loopback http. Over https any
                # refusal is a failure.
                if not doc.url.startswith("http:"):
                    raise CellFailure(f"the SDK refused the https client_metadata_url {doc.url}: {e}") from None
                log.info("[cimd] SDK refuses http client_metadata_url (%s)", e)
                raise Unsupported(
                    f"mcp {MCP_VERSION} accepts only an https client_metadata_url "
                    f"(mcp.client.auth.utils.is_valid_client_metadata_url) and the stack's loopback document is http"
                ) from None
            return await self.session(provider, storage, expect_registration=None, cimd_url=doc.url)

    async def session(
        self,
        provider: Any,
        storage: MemoryStorage,
        *,
        expect_registration: str | None,
        step_up: bool = False,
        cimd_url: str | None = None,
    ) -> str:
        timeout = httpx_mod.Timeout(30.0, read=120.0)
        async with httpx_mod.AsyncClient(
            auth=provider, timeout=timeout, event_hooks={"response": [self.trace.on_response]}, trust_env=False
        ) as http:
            if MAJOR >= 2:
                # "auto" is the SDK default: server/discover, falling back to initialize.
                extra = {"sampling_callback": answer_sampling} if self.gateway else {}
                async with Client(streamable_http_client(self.rs_url, http_client=http), mode=V2_CONNECT_MODE, **extra) as client:
                    sess = client.session
                    if sess.initialize_result is not None:
                        self.handshake = f"initialize {client.protocol_version}"
                    else:
                        require(sess.discover_result is not None, "neither initialize nor server/discover completed")
                        self.handshake = f"server/discover {client.protocol_version}"
                    if self.gateway:
                        return await self.exercise_gateway(client)
                    return await self.exercise(ClientOps2(client), storage, expect_registration, step_up, cimd_url)
            async with streamable_http_client(self.rs_url, http_client=http) as (read, write, _):
                if self.gateway:
                    async with ClientSession(read, write, sampling_callback=answer_sampling) as sess:
                        init = await sess.initialize()
                        self.handshake = f"initialize {init.protocolVersion}"
                        return await self.exercise_gateway(sess)
                async with ClientSession(read, write) as sess:
                    init = await sess.initialize()
                    self.handshake = f"initialize {init.protocolVersion}"
                    return await self.exercise(ClientOps1(sess), storage, expect_registration, step_up, cimd_url)

    async def exercise(
        self, ops: Any, storage: MemoryStorage, expect_registration: str | None, step_up: bool, cimd_url: str | None
    ) -> str:
        t = self.trace
        notes: list[str] = []

        # 401 -> discovery -> registration -> authorization -> token
        mcp_posts = [e for e in t.entries if e["method"] == "POST" and e["url"] == self.rs_url]
        require(bool(mcp_posts) and mcp_posts[0]["status"] == 401, f"first MCP request was not answered 401: {mcp_posts[:1]}")
        require(any(e["status"] == 200 for e in t.find("GET", "/.well-known/oauth-protected-resource/mcp")), "no protected resource metadata fetched")
        require(any(e["status"] == 200 for e in t.find("GET", "/.well-known/oauth-authorization-server")), "no authorization server metadata fetched")
        regs = t.find("POST", "/register")
        if expect_registration is None:
            require(not regs, f"unexpected dynamic registration: {regs}")
        else:
            require(len(regs) == 1 and regs[0]["status"] == 201, f"registration: {regs}")
            info = storage.client_info
            require(info is not None and info.token_endpoint_auth_method == expect_registration,
                    f"registered auth method {info and info.token_endpoint_auth_method!r}, wanted {expect_registration!r}")
            if expect_registration != "none":
                require(bool(info.client_secret), "confidential registration returned no client_secret")
        if cimd_url is not None:
            require(storage.client_info is not None and storage.client_info.client_id == cimd_url, "client_id is not the metadata document URL")
            require(self.cimd_doc is not None and self.cimd_doc.fetches > 0, "the authorization server never fetched the metadata document")
        require(len(self.authorizations) == 1, f"{len(self.authorizations)} authorizations before initialize")
        auth0 = self.authorizations[0]
        if cimd_url is not None:
            sent = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(auth0.url).query)).get("client_id")
            require(sent == cimd_url, f"authorization client_id {sent!r}, wanted the metadata document URL {cimd_url!r}")
        require(auth0.code is not None and auth0.iss is not None, f"authorization response lacks code or iss: {auth0}")
        codes = t.find("POST", "/token", grant_type="authorization_code")
        require(len(codes) == 1 and codes[0]["status"] == 200, f"code exchange: {codes}")
        self.check_client_auth(codes[0], storage)
        require(storage.tokens is not None, "no tokens stored")

        # tools/list
        tools = await ops.list_tools()
        names = {tool.name for tool in tools.tools}
        wanted = {"get_user_profile", "list_secure_notes", "get_api_usage", "create_secure_note"}
        require(wanted <= names, f"tools/list lacks {sorted(wanted - names)}")

        # get_user_profile
        profile = tool_json(await ops.call_tool("get_user_profile", {}))
        require(USERNAME in json.dumps(profile), f"get_user_profile does not name {USERNAME}: {profile}")
        require(not EXPECT_SUB or profile.get("id") == EXPECT_SUB, f"get_user_profile is not about {EXPECT_SUB}: {profile}")

        # create_secure_note (the step-up point when the token only carries mcp:read)
        if step_up:
            granted = storage.tokens.scope if storage.tokens else None
            require(granted is not None and "mcp:write" not in granted.split(), f"step-up precondition: token scope is {granted!r}")
        title = f"interop {self.mode} {MCP_VERSION}"
        note = tool_json(await ops.call_tool("create_secure_note", {"title": title, "content": "written by the python SDK"}))
        require(title in json.dumps(note), f"create_secure_note result does not carry the title: {note}")
        if step_up:
            denied = [e for e in t.entries if e["status"] == 403]
            require(bool(denied) and "insufficient_scope" in (denied[0].get("www_authenticate") or ""),
                    f"no 403 insufficient_scope seen: {denied}")
            require(len(self.authorizations) == 2, f"{len(self.authorizations)} authorizations, wanted 2 (re-authorization)")
            second = self.authorizations[1]
            asked = (second.scope_requested or "").split()
            require("mcp:write" in asked, f"re-authorization asked for scope {second.scope_requested!r}")
            granted = storage.tokens.scope if storage.tokens else None
            require(granted is not None and "mcp:write" in granted.split(), f"token after step-up has scope {granted!r}")
            challenged = _auth_param(denied[0].get("www_authenticate") or "", "scope")
            notes.append(f"403 insufficient_scope scope={challenged!r}, re-authorized for {second.scope_requested!r}")
        else:
            require(len(self.authorizations) == 1, "unexpected re-authorization")

        # resources/read user://profile
        res = await ops.read_resource("user://profile")
        require(bool(res.contents), "resources/read user://profile returned no contents")
        body = getattr(res.contents[0], "text", None)
        require(body is not None and USERNAME in body, f"user://profile does not name {USERNAME}: {body!r}")

        # A deployment's real token lifetime is too long to wait out: its check stops here.
        if os.environ.get("INTEROP_SKIP_REFRESH"):
            notes.insert(0, self.handshake)
            return "; ".join(notes + ["refresh not exercised (INTEROP_SKIP_REFRESH)"])

        # refresh: wait past the access token's lifetime, then call again
        auths_before = len(self.authorizations)
        set_at, tok = storage.history[-1]
        require(tok.expires_in is not None, "token response has no expires_in; cannot time a refresh")
        require(tok.refresh_token is not None, "no refresh token issued")
        require(tok.expires_in <= MAX_REFRESH_WAIT,
                f"access token lives {tok.expires_in}s; the refresh check needs a short lifetime (stack: AUTHZ_ACCESS_TOKEN_TTL=6)")
        wait = set_at + tok.expires_in + 1.0 - time.time()
        log.info("[%s] waiting %.1fs for the access token to expire", self.mode, max(wait, 0))
        if wait > 0:
            await anyio.sleep(wait)
        old_access = tok.access_token
        usage = tool_json(await ops.call_tool("get_api_usage", {}))
        refreshes = t.find("POST", "/token", grant_type="refresh_token")
        require(bool(refreshes), "no refresh_token grant was sent after expiry")
        require(all(e["status"] == 200 for e in refreshes), f"refresh grant failed: {refreshes}")
        self.check_client_auth(refreshes[-1], storage)
        require(storage.tokens is not None and storage.tokens.access_token != old_access, "token storage holds no new access token")
        require(len(self.authorizations) == auths_before, "the SDK re-authorized instead of refreshing")
        require(isinstance(usage, (dict, list)), f"get_api_usage after refresh: {usage!r}")
        notes.insert(0, self.handshake)
        return "; ".join(notes)

    async def exercise_gateway(self, sess: Any) -> str:
        """server-everything behind the gateway: OAuth happened, then its tools, progress,
        sampling answered by this client, a resource and a prompt."""
        t = self.trace
        mcp_posts = [e for e in t.entries if e["method"] == "POST" and e["url"] == self.rs_url]
        require(bool(mcp_posts) and mcp_posts[0]["status"] == 401, "first MCP request was not answered 401")
        path = urllib.parse.urlsplit(self.rs_url).path
        require(any(e["status"] == 200 for e in t.find("GET", f"/.well-known/oauth-protected-resource{path}")), "no protected resource metadata for the gateway endpoint")
        names: set[str] = set()
        for _ in range(50):
            names = {tool.name for tool in (await sess.list_tools()).tools}
            if "trigger-sampling-request" in names:
                break
            await anyio.sleep(0.1)
        require("echo" in names and "trigger-sampling-request" in names, f"tools: {sorted(names)}")
        require("get-env" not in names, "get-env is outside the policy but listed")
        echo = await sess.call_tool("echo", {"message": "hi"})
        require(echo.content[0].text == "Echo: hi", f"echo: {echo}")
        progress: list[float] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append(p)

        await sess.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress)
        for _ in range(40):
            if len(progress) >= 3:
                break
            await anyio.sleep(0.05)
        require(len(progress) >= 3, f"progress notifications: {progress}")
        sampled = await sess.call_tool("trigger-sampling-request", {"prompt": "the answer?", "maxTokens": 10})
        require("42" in json.dumps(sampled.model_dump()), f"sampling answer not relayed: {sampled}")
        resources = (await sess.list_resources()).resources
        static = [r for r in resources if str(r.uri).startswith("demo://resource/static/")]
        require(bool(static), f"resources: {resources[:3]}")
        read = await sess.read_resource(static[0].uri)
        require(bool(read.contents), "empty resource")
        prompt = await sess.get_prompt("simple-prompt")
        require(bool(prompt.messages), "empty prompt")
        if MAJOR >= 2:
            # An abandoned call: the SDK sends notifications/cancelled, which the gateway
            # passes on; the session carries on.
            with anyio.move_on_after(0.8):
                await sess.call_tool("trigger-long-running-operation", {"duration": 20, "steps": 20})
                raise CellFailure("the long call ended before it was abandoned")
            after = await sess.call_tool("echo", {"message": "after"})
            require(after.content[0].text == "Echo: after", f"echo after the cancelled call: {after}")
            cancelled = "a long call cancelled"
        else:
            cancelled = "no cancellation (1.x sends no notifications/cancelled for an abandoned call)"
        return f"{len(names)} tools, {len(progress)} progress, sampling, resource, prompt, {cancelled}"

    def check_client_auth(self, entry: dict[str, Any], storage: MemoryStorage) -> None:
        method = storage.client_info.token_endpoint_auth_method if storage.client_info else None
        if method == "client_secret_basic":
            require(entry.get("basic_auth") and not entry.get("client_secret_in_body"), f"token request not using basic auth: {entry}")
        elif method == "client_secret_post":
            require(entry.get("client_secret_in_body") and not entry.get("basic_auth"), f"token request not using post auth: {entry}")
        else:
            require(not entry.get("basic_auth") and not entry.get("client_secret_in_body"), f"public client sent a secret: {entry}")


class ClientOps1:
    def __init__(self, session: Any):
        self.s = session

    async def list_tools(self) -> Any:
        return await self.s.list_tools()

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        return await self.s.call_tool(name, args)

    async def read_resource(self, uri: str) -> Any:
        from pydantic import AnyUrl

        return await self.s.read_resource(AnyUrl(uri))


class ClientOps2:
    def __init__(self, client: Any):
        self.c = client

    async def list_tools(self) -> Any:
        return await self.c.list_tools()

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        return await self.c.call_tool(name, args)

    async def read_resource(self, uri: str) -> Any:
        return await self.c.read_resource(uri)


def _auth_param(header: str, name: str) -> str | None:
    import re

    m = re.search(rf'{name}="([^"]*)"', header)
    return m.group(1) if m else None


def tool_json(result: Any) -> Any:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    is_error = getattr(result, "is_error", None) if MAJOR >= 2 else result.isError  # 2.x renamed the field
    require(not is_error, f"tool error: {texts}")
    require(len(texts) == 1, f"expected one text content, got {result.content!r}")
    try:
        return json.loads(texts[0])
    except ValueError:
        raise CellFailure(f"tool text is not JSON: {texts[0][:200]!r}") from None


async def answer_sampling(context: Any, params: Any) -> Any:
    """The client's model, for an upstream's sampling request: always "42"."""
    from mcp.types import CreateMessageResult, TextContent

    return CreateMessageResult(role="assistant", content=TextContent(type="text", text="42"), model="interop")


def describe(exc: BaseException) -> str:
    """A one-line reason, looking inside exception groups for the first real cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CellFailure) else str(exc)
    req = getattr(exc, "_request", None)  # httpx/httpx2 transport errors carry the request they failed on
    if req is not None:
        text += f" (on {req.method} {req.url})"
    return " ".join(text.split())[:500]


def find_cause(exc: BaseException, kind: type, seen: set[int] | None = None) -> BaseException | None:
    # An exception group's member can have the group itself as its __context__: each
    # exception is looked at once, or the walk never ends (RecursionError).
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return None
    seen.add(id(exc))
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = find_cause(sub, kind, seen)
            if found:
                return found
    if exc.__cause__ is not None:
        return find_cause(exc.__cause__, kind, seen)
    if exc.__context__ is not None and not exc.__suppress_context__:
        return find_cause(exc.__context__, kind, seen)
    return None


async def run_cell(as_url: str, rs_url: str, mode: str) -> dict[str, str]:
    cell = Cell(as_url, rs_url, mode)
    started = time.time()
    result, detail = "pass", ""
    try:
        with anyio.fail_after(CELL_TIMEOUT):
            detail = await cell.run()
    except Unsupported as e:
        result, detail = "unsupported", str(e)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        failure = find_cause(e, CellFailure)
        result, detail = "fail", describe(failure or e)
        if isinstance(e, TimeoutError) and not failure:
            detail = f"timed out after {CELL_TIMEOUT:.0f}s"
        log.error("[%s] failed:\n%s", mode, "".join(traceback.format_exception(e)))
        log.error("[%s] trace:\n%s", mode, "\n".join(json.dumps(x) for x in cell.trace.entries))
    log.info("[%s] %s in %.1fs %s", mode, result, time.time() - started, detail)
    return {"client": "python-mcp", "version": MCP_VERSION, "mode": mode, "result": result, "detail": detail}


async def main_async(args: argparse.Namespace) -> int:
    failed = False
    for mode in args.modes:
        line = await run_cell(args.as_url, args.rs_url, mode)
        print(json.dumps(line, separators=(",", ":")), flush=True)
        failed |= line["result"] == "fail"
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("as_url", help="authorization server base URL, e.g. http://127.0.0.1:18001")
    p.add_argument("rs_url", help="MCP endpoint URL, e.g. http://127.0.0.1:18002/mcp")
    p.add_argument("--modes", default=",".join(m for m in MODES if not m.startswith("gateway-")), help="comma-separated subset of " + ",".join(MODES))
    args = p.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        p.error(f"unknown modes {unknown}")
    level = logging.DEBUG if os.environ.get("INTEROP_DEBUG") else logging.INFO
    logging.basicConfig(stream=sys.stderr, level=level, format=f"%(asctime)s python-mcp {MCP_VERSION} %(name)s %(levelname)s %(message)s")
    if not os.environ.get("INTEROP_DEBUG"):
        for noisy in ("httpx", "httpx2", "httpcore", "mcp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return anyio.run(main_async, args)


if __name__ == "__main__":
    sys.exit(main())
