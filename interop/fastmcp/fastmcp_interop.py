#!/usr/bin/env python3
"""Interop cells for the FastMCP Python client (`fastmcp`) against this stack.

Each cell opens one fresh `fastmcp.Client` over `StreamableHttpTransport` whose only
OAuth logic is FastMCP's own `fastmcp.client.auth.OAuth` helper (which builds on the
`mcp` SDK's `OAuthClientProvider`): discovery, registration, PKCE, its own loopback
callback server (uvicorn), the code exchange and the refresh are all FastMCP's.

The one step a person would do is replaced: FastMCP calls `webbrowser.open(url)`; the
driver registers a stand-in browser with the standard library's `webbrowser` registry.
In its own thread (like a separate browser process) it walks the authorization URL
through the login and consent pages over plain HTTP (cookies kept, redirects not
followed) and then GETs the final redirect, code, state and iss included, from
FastMCP's callback server, so FastMCP itself receives the code and exchanges it.

Token storage is a fresh in-memory store (`key_value.aio.stores.memory.MemoryStore`,
what FastMCP uses by default) per cell.

Usage: fastmcp_interop.py AS_BASE_URL RS_MCP_URL [--modes m1,m2,...]
Prints one JSON line per cell on stdout; exits 1 if any cell failed.
"""

from __future__ import annotations

import argparse
import html
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
import warnings
import webbrowser
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from key_value.aio.stores.memory import MemoryStore

from fastmcp import Client
from fastmcp.client.auth import OAuth
from fastmcp.client.transports import StreamableHttpTransport

CLIENT = "fastmcp"
FASTMCP_VERSION = importlib.metadata.version("fastmcp")
MCP_VERSION = importlib.metadata.version("mcp")

MODES = ["dcr-public", "dcr-client_secret_basic", "dcr-client_secret_post", "cimd", "preregistered", "step-up", "gateway-stdio", "gateway-http"]
USERNAME = os.environ.get("INTEROP_USERNAME", "testuser")
PASSWORD = os.environ.get("INTEROP_PASSWORD", "testpass")
# The endpoint is the gateway in front of server-everything: exercise that server instead.
GATEWAY = os.environ.get("INTEROP_GATEWAY", "") == "everything"
PREREGISTERED_CLIENT_ID = os.environ.get("INTEROP_PREREGISTERED_CLIENT_ID", "mcp-test-client")
CELL_TIMEOUT = float(os.environ.get("INTEROP_CELL_TIMEOUT", "60"))
# How long FastMCP's callback server waits for the browser (its default is 300s).
CALLBACK_TIMEOUT = float(os.environ.get("INTEROP_CALLBACK_TIMEOUT", "20"))
# Longest access-token lifetime the refresh step will wait out.
MAX_REFRESH_WAIT = float(os.environ.get("INTEROP_MAX_REFRESH_WAIT", "30"))
# FastMCP Client connect mode: "auto" (FastMCP default), "legacy" or a protocol version.
CONNECT_MODE = os.environ.get("INTEROP_FASTMCP_MODE", "auto")
# A certificate (and its key) for 127.0.0.1 to serve the CIMD document over https with, e.g. from
# interop/test-ca.sh; the stack must trust its issuer (SSL_CERT_FILE). Without them the document
# is served over http, which FastMCP (the mcp SDK under it) refuses.
CIMD_CERT = os.environ.get("INTEROP_CIMD_CERT", "")
CIMD_KEY = os.environ.get("INTEROP_CIMD_KEY", "")

log = logging.getLogger("interop")


class CellFailure(Exception):
    pass


class Unsupported(Exception):
    pass


def require(cond: Any, what: str) -> None:
    if not cond:
        raise CellFailure(what)


# --------------------------------------------------------------------------- the person with a browser


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


class HttpUserAgent:
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
    text = re.sub(r"<[^>]+>", " ", body)
    return " ".join(text.split())[:limit]


@dataclass
class Authorization:
    url: str  # what the browser was opened with
    scope_requested: str | None  # the scope FastMCP asked for
    walked_url: str = ""  # what the person actually submitted (step-up narrows the scope)
    redirect: str | None = None  # the final redirect to FastMCP's callback server
    code: str | None = None
    state: str | None = None
    iss: str | None = None
    error: str | None = None
    callback_status: int | None = None  # how FastMCP's callback server answered
    callback_body: str = ""
    failure: str | None = None  # the person got stuck
    done: threading.Event = field(default_factory=threading.Event)


def walk_authorization(ua: HttpUserAgent, auth_url: str, redirect_uri: str, result: Authorization) -> None:
    """Drives login and consent for `auth_url` the way a person with a browser would and
    stops at the redirect to `redirect_uri` (scheme, host, port and path must match)."""
    target = urllib.parse.urlsplit(redirect_uri)
    url, form = auth_url, None
    for _ in range(16):
        resp = ua.request(url, form)
        if resp.status in (301, 302, 303, 307, 308):
            require(resp.location is not None, f"{resp.status} without Location from {url!r}")
            url, form = urllib.parse.urljoin(url, resp.location), None
            parts = urllib.parse.urlsplit(url)
            if (parts.scheme, parts.netloc, parts.path) == (target.scheme, target.netloc, target.path):
                params = dict(urllib.parse.parse_qsl(parts.query))
                result.redirect = url
                result.code = params.get("code")
                result.state = params.get("state")
                result.iss = params.get("iss")
                if "error" in params:
                    result.error = f"{params['error']}: {params.get('error_description', '')}"
                return
            continue
        require(resp.status == 200, f"authorization walk: {resp.status} at {url!r}: {_text_excerpt(resp.body)}")
        parser = _FormParser()
        parser.feed(resp.body)
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


def deliver_callback(ua: HttpUserAgent, url: str, result: Authorization, deadline: float) -> None:
    """The browser loads the final redirect: FastMCP's callback server. The person may be
    quicker than FastMCP starting that server (it starts it after webbrowser.open returns),
    so a refused connection is retried until the deadline."""
    while True:
        try:
            resp = ua.request(url)
            result.callback_status, result.callback_body = resp.status, resp.body
            return
        except urllib.error.URLError as e:
            if time.time() > deadline:
                raise CellFailure(f"FastMCP's callback server at {url.split('?')[0]!r} never answered: {e.reason}") from None
            time.sleep(0.05)


class ScriptedBrowser(webbrowser.BaseBrowser):
    """What `webbrowser.open` reaches: hands the URL to the running cell's person."""

    cell: "Cell | None" = None

    def __init__(self) -> None:
        super().__init__("interop-scripted-user")

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        cell = ScriptedBrowser.cell
        if cell is None:
            log.error("webbrowser.open(%r) outside a cell", url)
            return False
        cell.browser_opened(url)
        return True


_BROWSER = ScriptedBrowser()
# preferred=True puts it first in webbrowser's try order, ahead of $BROWSER and any real browser.
webbrowser.register(_BROWSER.name, None, _BROWSER, preferred=True)


# --------------------------------------------------------------------------- CIMD document


class MetadataDocumentServer:
    """Serves one client ID metadata document on a loopback port; the document is set
    once the client's redirect URI is known. Over https when INTEROP_CIMD_CERT and
    INTEROP_CIMD_KEY name a certificate for 127.0.0.1 that the stack was started trusting
    (SSL_CERT_FILE pointing at its CA), over http (which the stack fetches with
    AUTHZ_CIMD_ALLOW_LOOPBACK) otherwise."""

    def __init__(self) -> None:
        server = self
        self.fetches = 0
        self.body = b"{}"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/oauth/client-metadata.json":
                    self.send_error(404)
                    return
                body = server.body
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
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def set_document(self, redirect_uri: str) -> None:
        self.document = {
            "client_id": self.url,
            "client_name": f"fastmcp {FASTMCP_VERSION} interop (CIMD)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        self.body = json.dumps(self.document).encode()

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


def plain_http_factory(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None, **kwargs: Any) -> httpx2.AsyncClient:
    """FastMCP's pre-flight GET of the authorization URL: no proxy from the environment."""
    return httpx2.AsyncClient(headers=headers, timeout=timeout or httpx2.Timeout(30.0), auth=auth, trust_env=False,
                              follow_redirects=kwargs.get("follow_redirects", False))


class Cell:
    def __init__(self, as_url: str, rs_url: str, mode: str):
        self.as_url = as_url.rstrip("/")
        self.rs_url = rs_url
        self.mode = mode
        self.trace = Trace()
        self.authorizations: list[Authorization] = []
        self.narrow_next_scope: str | None = None
        self.handshake = ""
        self.cimd_doc: MetadataDocumentServer | None = None
        self.provider: OAuth | None = None
        self.ua = HttpUserAgent()  # one browser per cell: its cookies (the AS session) persist
        self.threads: list[threading.Thread] = []
        self.gateway = GATEWAY or mode.startswith("gateway-")

    # ------------------------------------------------------------ the person

    def browser_opened(self, url: str) -> None:
        """FastMCP called webbrowser.open(url). The person works in their own browser, in
        parallel with FastMCP (which goes on to start its callback server)."""
        assert self.provider is not None
        scope = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)).get("scope")
        auth = Authorization(url=url, scope_requested=scope)
        walked = url
        if self.narrow_next_scope is not None:
            # The person grants less than the client asked for (RFC 6749 §3.3 lets the
            # server issue a narrower scope); FastMCP is not told.
            parts = urllib.parse.urlsplit(url)
            q = [(k, self.narrow_next_scope if k == "scope" else v) for k, v in urllib.parse.parse_qsl(parts.query)]
            walked = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))
            self.narrow_next_scope = None
        auth.walked_url = walked
        self.authorizations.append(auth)
        redirect_uri = str(self.provider.context.client_metadata.redirect_uris[0])
        log.info("[%s] browser opened: %s", self.mode, walked)

        def person() -> None:
            try:
                walk_authorization(self.ua, walked, redirect_uri, auth)
                require(auth.redirect is not None, "authorization walk ended without a redirect")
                deliver_callback(self.ua, auth.redirect, auth, time.time() + 15)
                log.info("[%s] callback server answered %s", self.mode, auth.callback_status)
            except Exception as e:  # noqa: BLE001
                auth.failure = describe(e)
                log.error("[%s] the scripted user failed: %s", self.mode, auth.failure)
            finally:
                auth.done.set()

        t = threading.Thread(target=person, name=f"browser-{self.mode}", daemon=True)
        self.threads.append(t)
        t.start()

    def browser_failure(self) -> str | None:
        for a in self.authorizations:
            if a.failure:
                return f"scripted user: {a.failure}"
            if a.error:
                return f"authorization redirect carried error {a.error}"
        return None

    # ------------------------------------------------------------ FastMCP objects

    def make_oauth(self, **kwargs: Any) -> OAuth:
        with warnings.catch_warnings():
            # "Using in-memory token storage -- tokens will be lost when the client restarts": intended.
            warnings.simplefilter("ignore")
            provider = OAuth(
                mcp_url=self.rs_url,
                client_name=f"fastmcp {FASTMCP_VERSION} interop ({self.mode})",
                token_storage=MemoryStore(),
                callback_host="localhost",
                callback_timeout=CALLBACK_TIMEOUT,
                httpx_client_factory=plain_http_factory,
                **kwargs,
            )
        self.provider = provider
        return provider

    def transport_factory(self, headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None, **kwargs: Any) -> httpx2.AsyncClient:
        """The MCP connection's HTTP client (FastMCP's httpx_client_factory hook), with a
        response hook that records every request, the OAuth flow's own included."""
        return httpx2.AsyncClient(
            headers=headers,
            auth=auth,
            timeout=timeout or httpx2.Timeout(30.0, read=120.0),
            follow_redirects=kwargs.get("follow_redirects", True),
            trust_env=False,
            event_hooks={"response": [self.trace.on_response]},
        )

    async def run(self) -> str:
        if self.mode.startswith("dcr-"):
            method = {"dcr-public": "none"}.get(self.mode, self.mode[len("dcr-") :])
            extra = {} if method == "none" else {"additional_client_metadata": {"token_endpoint_auth_method": method}}
            provider = self.make_oauth(**extra)
            return await self.session(provider, expect_registration=method)
        if self.mode == "preregistered":
            provider = self.make_oauth(client_id=PREREGISTERED_CLIENT_ID, issuer=self.as_url)
            return await self.session(provider, expect_registration=None)
        if self.mode == "step-up":
            provider = self.make_oauth()
            self.narrow_next_scope = "mcp:read"
            return await self.session(provider, expect_registration="none", step_up=True)
        if self.mode == "cimd":
            return await self.run_cimd()
        if self.mode.startswith("gateway-"):
            provider = self.make_oauth()
            return await self.session(provider, expect_registration="none")
        raise ValueError(self.mode)

    async def run_cimd(self) -> str:
        with MetadataDocumentServer() as doc:
            self.cimd_doc = doc
            try:
                provider = self.make_oauth(client_metadata_url=doc.url)
            except ValueError as e:
                # FastMCP hands client_metadata_url to the mcp SDK's OAuthClientProvider,
                # whose constructor accepts only https: without INTEROP_CIMD_CERT the document
                # is served over loopback http. Over https any refusal is a failure.
                if not doc.url.startswith("http:"):
                    raise CellFailure(f"FastMCP refused the https client_metadata_url {doc.url}: {e}") from None
                log.info("[cimd] FastMCP refuses the http document URL (%s)", e)
                raise Unsupported(
                    f"fastmcp {FASTMCP_VERSION} OAuth(client_metadata_url=...) hands the URL to mcp {MCP_VERSION} OAuthClientProvider, "
                    f"which accepts only an https URL (ValueError from mcp.client.auth.utils.is_valid_client_metadata_url; "
                    f"FastMCP documents the option as \"Must be an HTTPS URL\") and the stack's loopback document is http"
                ) from None
            doc.set_document(str(provider.context.client_metadata.redirect_uris[0]))
            return await self.session(provider, expect_registration=None, cimd_url=doc.url)

    async def session(self, provider: OAuth, *, expect_registration: str | None, step_up: bool = False, cimd_url: str | None = None) -> str:
        transport = StreamableHttpTransport(self.rs_url, auth=provider, httpx_client_factory=self.transport_factory)
        extra: dict[str, Any] = {"sampling_handler": answer_sampling} if self.gateway else {}
        ScriptedBrowser.cell = self
        try:
            async with Client(transport, mode=CONNECT_MODE, **extra) as client:
                if client.initialize_result is not None:
                    self.handshake = f"initialize {client.protocol_version}"
                else:
                    self.handshake = f"server/discover {client.protocol_version}"
                self.handshake += f" (fastmcp {FASTMCP_VERSION}, mcp {MCP_VERSION})"
                if self.gateway:
                    return await self.exercise_gateway(client, provider)
                return await self.exercise(client, provider, expect_registration, step_up, cimd_url)
        finally:
            ScriptedBrowser.cell = None

    async def check_authorization(self, auth: Authorization) -> None:
        """What the person saw at the end, and what FastMCP's callback server said."""
        finished = await anyio.to_thread.run_sync(auth.done.wait, 5.0)
        require(finished, "the scripted user had not finished")
        require(auth.failure is None, f"scripted user: {auth.failure}")
        require(auth.code is not None and auth.iss is not None, f"authorization response lacks code or iss: {auth.redirect}")
        require(auth.iss == self.as_url, f"iss {auth.iss!r} is not the issuer {self.as_url!r}")
        require(auth.callback_status == 200, f"FastMCP's callback server answered {auth.callback_status}: {_text_excerpt(auth.callback_body)}")

    async def exercise(self, client: Client, provider: OAuth, expect_registration: str | None, step_up: bool, cimd_url: str | None) -> str:
        t = self.trace
        storage = provider.token_storage_adapter
        notes: list[str] = []

        # 401 -> discovery -> registration -> authorization -> token
        mcp_posts = [e for e in t.entries if e["method"] == "POST" and e["url"] == self.rs_url]
        require(bool(mcp_posts) and mcp_posts[0]["status"] == 401, f"first MCP request was not answered 401: {mcp_posts[:1]}")
        require(any(e["status"] == 200 for e in t.find("GET", "/.well-known/oauth-protected-resource/mcp")), "no protected resource metadata fetched")
        require(any(e["status"] == 200 for e in t.find("GET", "/.well-known/oauth-authorization-server")), "no authorization server metadata fetched")
        regs = t.find("POST", "/register")
        info = await storage.get_client_info()
        if expect_registration is None:
            require(not regs, f"unexpected dynamic registration: {regs}")
        else:
            require(len(regs) == 1 and regs[0]["status"] == 201, f"registration: {regs}")
            require(info is not None and info.token_endpoint_auth_method == expect_registration,
                    f"registered auth method {info and info.token_endpoint_auth_method!r}, wanted {expect_registration!r}")
            if expect_registration != "none":
                require(bool(info.client_secret), "confidential registration returned no client_secret")
        if cimd_url is not None:
            require(info is not None and info.client_id == cimd_url, "client_id is not the metadata document URL")
            require(self.cimd_doc is not None and self.cimd_doc.fetches > 0, "the authorization server never fetched the metadata document")
            sent = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.authorizations[0].url).query)).get("client_id") if self.authorizations else None
            require(sent == cimd_url, f"authorization client_id {sent!r}, wanted the metadata document URL {cimd_url!r}")
        if self.mode == "preregistered":
            require(info is not None and info.client_id == PREREGISTERED_CLIENT_ID, f"client_id {info and info.client_id!r}")
        require(len(self.authorizations) == 1, f"{len(self.authorizations)} authorizations before initialize")
        await self.check_authorization(self.authorizations[0])
        codes = t.find("POST", "/token", grant_type="authorization_code")
        require(len(codes) == 1 and codes[0]["status"] == 200, f"code exchange: {codes}")
        self.check_client_auth(codes[0], info)
        tokens = await storage.get_tokens()
        require(tokens is not None, "no tokens stored")

        # tools/list
        tools = await client.list_tools()
        names = {tool.name for tool in tools}
        wanted = {"get_user_profile", "list_secure_notes", "get_api_usage", "create_secure_note"}
        require(wanted <= names, f"tools/list lacks {sorted(wanted - names)}")

        # get_user_profile
        profile = tool_json(await client.call_tool("get_user_profile", {}, raise_on_error=False))
        require(USERNAME in json.dumps(profile), f"get_user_profile does not name {USERNAME}: {profile}")

        # create_secure_note (the step-up point when the token only carries mcp:read)
        if step_up:
            granted = tokens.scope if tokens else None
            require(granted is not None and "mcp:write" not in granted.split(), f"step-up precondition: token scope is {granted!r}")
        title = f"interop {self.mode} fastmcp {FASTMCP_VERSION}"
        note = tool_json(await client.call_tool("create_secure_note", {"title": title, "content": "written by the FastMCP client"}, raise_on_error=False))
        require(title in json.dumps(note), f"create_secure_note result does not carry the title: {note}")
        if step_up:
            denied = [e for e in t.entries if e["status"] == 403]
            require(bool(denied) and "insufficient_scope" in (denied[0].get("www_authenticate") or ""), f"no 403 insufficient_scope seen: {denied}")
            require(len(self.authorizations) == 2, f"{len(self.authorizations)} authorizations, wanted 2 (re-authorization)")
            second = self.authorizations[1]
            await self.check_authorization(second)
            asked = (second.scope_requested or "").split()
            require("mcp:write" in asked, f"re-authorization asked for scope {second.scope_requested!r}")
            tokens = await storage.get_tokens()
            granted = tokens.scope if tokens else None
            require(granted is not None and "mcp:write" in granted.split(), f"token after step-up has scope {granted!r}")
            challenged = _auth_param(denied[0].get("www_authenticate") or "", "scope")
            notes.append(f"403 insufficient_scope scope={challenged!r}, re-authorized for {second.scope_requested!r}")
        else:
            require(len(self.authorizations) == 1, "unexpected re-authorization")

        # resources/read user://profile
        contents = await client.read_resource("user://profile")
        require(bool(contents), "resources/read user://profile returned no contents")
        body = getattr(contents[0], "text", None)
        require(body is not None and USERNAME in body, f"user://profile does not name {USERNAME}: {body!r}")

        # A deployment's real token lifetime is too long to wait out: its check stops here.
        if os.environ.get("INTEROP_SKIP_REFRESH"):
            notes.insert(0, self.handshake)
            return "; ".join(notes + ["refresh not exercised (INTEROP_SKIP_REFRESH)"])

        # refresh: wait past the access token's lifetime (FastMCP's stored absolute expiry), then call again
        auths_before = len(self.authorizations)
        tok = await storage.get_tokens()
        expires_at = await storage.get_token_expiry()
        require(tok is not None and tok.expires_in is not None and expires_at is not None, "token response has no expires_in; cannot time a refresh")
        require(tok.refresh_token is not None, "no refresh token issued")
        require(tok.expires_in <= MAX_REFRESH_WAIT,
                f"access token lives {tok.expires_in}s; the refresh check needs a short lifetime (stack: AUTHZ_ACCESS_TOKEN_TTL=6)")
        wait = expires_at + 1.0 - time.time()
        log.info("[%s] waiting %.1fs for the access token to expire", self.mode, max(wait, 0))
        if wait > 0:
            await anyio.sleep(wait)
        old_access = tok.access_token
        usage = tool_json(await client.call_tool("get_api_usage", {}, raise_on_error=False))
        refreshes = t.find("POST", "/token", grant_type="refresh_token")
        require(bool(refreshes), "no refresh_token grant was sent after expiry")
        require(all(e["status"] == 200 for e in refreshes), f"refresh grant failed: {refreshes}")
        self.check_client_auth(refreshes[-1], info)
        new = await storage.get_tokens()
        require(new is not None and new.access_token != old_access, "token storage holds no new access token")
        require(len(self.authorizations) == auths_before, "FastMCP re-authorized instead of refreshing")
        require(isinstance(usage, (dict, list)), f"get_api_usage after refresh: {usage!r}")
        notes.insert(0, self.handshake)
        return "; ".join(notes)

    async def exercise_gateway(self, client: Client, provider: OAuth) -> str:
        """server-everything behind the gateway: OAuth happened, then its tools, progress,
        sampling answered by this client, a resource and a prompt."""
        t = self.trace
        mcp_posts = [e for e in t.entries if e["method"] == "POST" and e["url"] == self.rs_url]
        require(bool(mcp_posts) and mcp_posts[0]["status"] == 401, "first MCP request was not answered 401")
        path = urllib.parse.urlsplit(self.rs_url).path
        require(any(e["status"] == 200 for e in t.find("GET", f"/.well-known/oauth-protected-resource{path}")), "no protected resource metadata for the gateway endpoint")
        require(len(self.authorizations) == 1, f"{len(self.authorizations)} authorizations")
        await self.check_authorization(self.authorizations[0])
        names: set[str] = set()
        for _ in range(50):
            names = {tool.name for tool in await client.list_tools()}
            if "trigger-sampling-request" in names:
                break
            await anyio.sleep(0.1)
        require("echo" in names and "trigger-sampling-request" in names, f"tools: {sorted(names)}")
        require("get-env" not in names, "get-env is outside the policy but listed")
        echo = await client.call_tool("echo", {"message": "hi"}, raise_on_error=False)
        require(not echo.is_error and echo.content[0].text == "Echo: hi", f"echo: {echo}")
        progress: list[float] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append(p)

        await client.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_handler=on_progress)
        for _ in range(40):
            if len(progress) >= 3:
                break
            await anyio.sleep(0.05)
        require(len(progress) >= 3, f"progress notifications: {progress}")
        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "the answer?", "maxTokens": 10}, raise_on_error=False)
        require("42" in json.dumps([c.model_dump() for c in sampled.content]), f"sampling answer not relayed: {sampled}")
        resources = await client.list_resources()
        static = [r for r in resources if str(r.uri).startswith("demo://resource/static/")]
        require(bool(static), f"resources: {resources[:3]}")
        read = await client.read_resource(static[0].uri)
        require(bool(read), "empty resource")
        prompt = await client.get_prompt("simple-prompt")
        require(bool(prompt.messages), "empty prompt")
        # An abandoned call: the session carries on afterwards.
        with anyio.move_on_after(0.8):
            await client.call_tool("trigger-long-running-operation", {"duration": 20, "steps": 20})
            raise CellFailure("the long call ended before it was abandoned")
        after = await client.call_tool("echo", {"message": "after"}, raise_on_error=False)
        require(not after.is_error and after.content[0].text == "Echo: after", f"echo after the cancelled call: {after}")
        return f"{self.handshake}; {len(names)} tools, {len(progress)} progress, sampling, resource, prompt, a long call cancelled"

    def check_client_auth(self, entry: dict[str, Any], info: Any) -> None:
        method = info.token_endpoint_auth_method if info else None
        if method == "client_secret_basic":
            require(entry.get("basic_auth") and not entry.get("client_secret_in_body"), f"token request not using basic auth: {entry}")
        elif method == "client_secret_post":
            require(entry.get("client_secret_in_body") and not entry.get("basic_auth"), f"token request not using post auth: {entry}")
        else:
            require(not entry.get("basic_auth") and not entry.get("client_secret_in_body"), f"public client sent a secret: {entry}")


def _auth_param(header: str, name: str) -> str | None:
    m = re.search(rf'{name}="([^"]*)"', header)
    return m.group(1) if m else None


def tool_json(result: Any) -> Any:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    require(not result.is_error, f"tool error: {texts}")
    require(len(texts) == 1, f"expected one text content, got {result.content!r}")
    try:
        return json.loads(texts[0])
    except ValueError:
        raise CellFailure(f"tool text is not JSON: {texts[0][:200]!r}") from None


def answer_sampling(messages: Any, params: Any, context: Any) -> str:
    """The client's model, for an upstream's sampling request: always "42"."""
    return "42"


def describe(exc: BaseException) -> str:
    """A one-line reason, looking inside exception groups for the first real cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CellFailure) else str(exc)
    req = getattr(exc, "_request", None)  # httpx2 transport errors carry the request they failed on
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
        # When the person got stuck FastMCP only sees its callback time out: say why.
        stuck = cell.browser_failure()
        if stuck and not failure:
            detail = f"{stuck} (FastMCP: {detail})"[:500]
        elif isinstance(e, TimeoutError) and not failure:
            detail = f"timed out after {CELL_TIMEOUT:.0f}s"
        log.error("[%s] failed:\n%s", mode, "".join(traceback.format_exception(e)))
        log.error("[%s] trace:\n%s", mode, "\n".join(json.dumps(x) for x in cell.trace.entries))
    log.info("[%s] %s in %.1fs %s", mode, result, time.time() - started, detail)
    return {"client": CLIENT, "version": FASTMCP_VERSION, "mode": mode, "result": result, "detail": detail}


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
    logging.basicConfig(stream=sys.stderr, level=level, format=f"%(asctime)s fastmcp {FASTMCP_VERSION} %(name)s %(levelname)s %(message)s")
    if not os.environ.get("INTEROP_DEBUG"):
        for noisy in ("httpx", "httpx2", "httpcore", "mcp", "fastmcp", "uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return anyio.run(main_async, args)


if __name__ == "__main__":
    sys.exit(main())
