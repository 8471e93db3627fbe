#!/usr/bin/env python3
"""Interop cells for mcp-remote (the stdio-to-remote MCP bridge) against this stack.

A stdio MCP client (the official Python SDK's `stdio_client` + `ClientSession`) launches
`node …/mcp-remote/dist/proxy.js <mcp-url> <callback-port> [flags]`, exactly as a desktop host
would. mcp-remote does all of OAuth itself: discovery, registration, PKCE, its own loopback
callback server, the code exchange, token storage under MCP_REMOTE_CONFIG_DIR and refreshes.
This script only plays the person: it reads the authorization URL mcp-remote prints on stderr,
walks the login and consent pages over plain HTTP (cookies kept, redirects not followed) and
GETs the final redirect, which is mcp-remote's own callback URL.

No browser is started: mcp-remote hands the URL to the `open` package, whose xdg-open (and
mcp-remote's Linux fallbacks) honour $BROWSER; it points at a script that only records the URL.
Its outgoing HTTP is recorded by trace.mjs (a preload that only observes undici's diagnostics
channels), the authorization server's side is read from its /metrics counters.

Each cell runs the bridge three times against one config dir: a first run that signs in, a
second run that must not, and a third one after the access token expired that must refresh.

Usage: mcp_remote_interop.py AS_BASE_URL RS_MCP_URL [--modes m1,m2,...]
Prints one JSON line per cell on stdout; exits 1 if any cell failed.
"""

from __future__ import annotations

import argparse
import html
import html.parser
import http.cookiejar
import http.server
import json
import logging
import os
import re
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from pydantic import AnyUrl

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "node_modules" / "mcp-remote"
PROXY_JS = PACKAGE / "dist" / "proxy.js"
TRACE_JS = HERE / "trace.mjs"
CLIENT = "mcp-remote"

MODES = ["dcr-public", "dcr-client_secret_basic", "dcr-client_secret_post", "cimd", "preregistered", "step-up"]
# Against the gateway in front of server-everything (asked for by name).
GATEWAY_MODES = ["gateway-stdio", "gateway-http"]
USERNAME = os.environ.get("INTEROP_USERNAME", "testuser")
PASSWORD = os.environ.get("INTEROP_PASSWORD", "testpass")
PREREGISTERED_CLIENT_ID = os.environ.get("INTEROP_PREREGISTERED_CLIENT_ID", "mcp-test-client")
CELL_TIMEOUT = float(os.environ.get("INTEROP_CELL_TIMEOUT", "120"))
# Longest access-token lifetime the third run will wait out.
MAX_REFRESH_WAIT = float(os.environ.get("INTEROP_MAX_REFRESH_WAIT", "30"))
NODE = os.environ.get("NODE", "node")
# A certificate (and its key) for 127.0.0.1 to serve the CIMD document over https with; the
# stack must trust its issuer. Without them the document is served over http.
CIMD_CERT = os.environ.get("INTEROP_CIMD_CERT", "")
CIMD_KEY = os.environ.get("INTEROP_CIMD_KEY", "")
DEBUG = bool(os.environ.get("INTEROP_DEBUG"))
AUTHORIZE_PROMPT = "Please authorize this client by visiting:"
WANTED_TOOLS = {"get_user_profile", "list_secure_notes", "get_api_usage", "create_secure_note"}

log = logging.getLogger("mcp-remote-interop")


class CellFailure(Exception):
    pass


class Unsupported(Exception):
    pass


def require(cond: Any, what: str) -> None:
    if not cond:
        raise CellFailure(what)


def mcp_remote_version() -> str:
    return json.loads((PACKAGE / "package.json").read_text())["version"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())[:limit]


@dataclass
class Authorization:
    url: str  # as mcp-remote printed it
    walked: str  # as the person walked it (the step-up cell narrows the scope)
    params: dict[str, str]
    redirect: str | None = None  # where the consent page sent the browser
    callback_status: int | None = None
    callback_body: str = ""


def walk_authorization(auth: Authorization) -> None:
    """Drives login and consent the way a person with a browser would, then follows the final
    redirect to mcp-remote's callback server, whose port must be the one in redirect_uri."""
    redirect_uri = auth.params.get("redirect_uri", "")
    target = urllib.parse.urlsplit(redirect_uri)
    require(target.scheme == "http" and target.hostname in ("localhost", "127.0.0.1"), f"redirect_uri is not loopback http: {redirect_uri!r}")
    browser = Browser()
    url, form = auth.walked, None
    for _ in range(16):
        resp = browser.request(url, form)
        if resp.status in (301, 302, 303, 307, 308):
            require(resp.location is not None, f"{resp.status} without Location from {url!r}")
            url, form = urllib.parse.urljoin(url, resp.location), None
            parts = urllib.parse.urlsplit(url)
            if (parts.scheme, parts.netloc, parts.path) == (target.scheme, target.netloc, target.path):
                auth.redirect = url
                params = dict(urllib.parse.parse_qsl(parts.query))
                require("error" not in params, f"authorization redirect carried error {params.get('error')}: {params.get('error_description', '')}")
                require(params.get("code") and params.get("iss"), f"authorization redirect lacks code or iss: {url}")
                deliver_callback(auth)
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


def deliver_callback(auth: Authorization) -> None:
    """GETs the redirect on mcp-remote's callback server, as the browser would. mcp-remote may
    start that server only after it printed the URL (a re-authorization mid-session), so a
    refused connection is tried again for a while."""
    assert auth.redirect is not None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    deadline = time.time() + 15
    while True:
        try:
            with opener.open(urllib.request.Request(auth.redirect), timeout=30) as r:
                auth.callback_status, auth.callback_body = r.status, r.read().decode("utf-8", "replace")
            return
        except urllib.error.HTTPError as e:
            auth.callback_status, auth.callback_body = e.code, e.read().decode("utf-8", "replace")
            return
        except (urllib.error.URLError, ConnectionError) as e:
            if time.time() > deadline:
                raise CellFailure(f"mcp-remote's callback {auth.redirect.split('?')[0]} never answered: {e}") from None
            time.sleep(0.1)


# --------------------------------------------------------------------------- CIMD document


class MetadataDocumentServer:
    """Serves one client ID metadata document on a loopback port: over http (which the stack
    fetches with AUTHZ_CIMD_ALLOW_LOOPBACK), or over https when INTEROP_CIMD_CERT and
    INTEROP_CIMD_KEY name a certificate for 127.0.0.1 that the stack was started trusting
    (e.g. SSL_CERT_FILE pointing at its CA)."""

    def __init__(self, redirect_uri: str):
        server = self
        self.fetches = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/oauth/client-metadata.json":
                    self.send_error(404)
                    return
                body = json.dumps(server.document).encode()
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
            "client_name": "mcp-remote interop (CIMD)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "MetadataDocumentServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- evidence


def read_metrics(as_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """The authorization server's Prometheus counters, or None when it publishes none."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{as_url}/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception as e:  # noqa: BLE001
        log.info("no /metrics from the authorization server (%s); AS-side counts are skipped", e)
        return None
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+([0-9.eE+-]+)$", line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(snapshot: dict | None, name: str, **labels: str) -> float:
    if snapshot is None:
        return 0.0
    return sum(v for (n, ls), v in snapshot.items() if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


@dataclass
class RunRecord:
    """What one bridge process did."""

    number: int
    stderr: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)
    browser_launches: list[str] = field(default_factory=list)
    authorizations: list[Authorization] = field(default_factory=list)
    metrics_before: dict | None = None
    metrics_after: dict | None = None
    tokens_before: dict | None = None
    tokens_after: dict | None = None
    client_before: dict | None = None
    client_after: dict | None = None
    handshake: str = ""
    # What the gateway cell saw of server-everything.
    gateway: str = ""

    def as_delta(self, name: str, **labels: str) -> float | None:
        if self.metrics_before is None or self.metrics_after is None:
            return None
        return metric(self.metrics_after, name, **labels) - metric(self.metrics_before, name, **labels)

    def find(self, method: str, path_suffix: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.trace
            if e["method"] == method
            and urllib.parse.urlsplit(e["url"]).path.endswith(path_suffix)
            and all(e.get(k) == v for k, v in match.items())
        ]

    def token_grants(self, grant_type: str) -> list[dict[str, Any]]:
        return self.find("POST", "/token", grant_type=grant_type)


# --------------------------------------------------------------------------- one cell


def _auth_param(header: str, name: str) -> str | None:
    m = re.search(rf'{name}="([^"]*)"', header)
    return m.group(1) if m else None


def tool_json(result: Any) -> Any:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    require(not result.isError, f"tool error: {texts}")
    require(len(texts) == 1, f"expected one text content, got {result.content!r}")
    try:
        return json.loads(texts[0])
    except ValueError:
        raise CellFailure(f"tool text is not JSON: {texts[0][:200]!r}") from None


class Cell:
    def __init__(self, as_url: str, rs_url: str, mode: str, workdir: Path, version: str):
        self.as_url = as_url.rstrip("/")
        self.rs_url = rs_url
        self.mode = mode
        self.version = version
        self.dir = workdir / mode
        self.dir.mkdir(parents=True)
        # mcp-remote's whole credential store for this cell: fresh per driver run, shared by
        # the cell's three bridge processes, apart from every other cell's.
        self.config_dir = self.dir / "config"
        self.config_dir.mkdir()
        self.port = free_port()
        self.callback_path = "/oauth/callback"
        self.extra_args: list[str] = []
        self.narrow_first_scope: str | None = None
        self.cimd: MetadataDocumentServer | None = None
        self.runs: list[RunRecord] = []
        self.browser_stub = self.dir / "browser"
        self.browser_stub.write_text('#!/bin/sh\n# Stands in for a browser: records the URL it was asked to open.\nprintf \'%s\\n\' "$1" >> "$INTEROP_BROWSER_LOG"\n')
        self.browser_stub.chmod(0o755)

    # ---- mcp-remote's files

    def store_file(self, suffix: str) -> dict | None:
        store = self.config_dir / "mcp-remote-v1"
        found = sorted(store.glob(f"*_{suffix}")) if store.is_dir() else []
        require(len(found) <= 1, f"more than one {suffix} in {store}: {found}")
        return json.loads(found[0].read_text()) if found else None

    # ---- one bridge process

    def server_parameters(self, run: RunRecord) -> StdioServerParameters:
        args = ["--import", TRACE_JS.as_uri(), str(PROXY_JS), self.rs_url, str(self.port)]
        if self.callback_path != "/oauth/callback":
            args += ["--callback-path", self.callback_path]
        args += self.extra_args
        if DEBUG:
            args.append("--debug")
        env = {
            "MCP_REMOTE_CONFIG_DIR": str(self.config_dir),
            "BROWSER": str(self.browser_stub),
            "INTEROP_BROWSER_LOG": str(self.dir / f"run{run.number}.browser"),
            "INTEROP_TRACE": str(self.dir / f"run{run.number}.trace"),
        }
        return StdioServerParameters(command=NODE, args=args, env=env, cwd=str(self.dir))

    async def bridge(self, number: int, work: Any) -> RunRecord:
        """Runs one mcp-remote process behind a stdio ClientSession and calls `work(session, run)`."""
        run = RunRecord(number)
        self.runs.append(run)
        run.metrics_before = read_metrics(self.as_url)
        run.tokens_before = self.store_file("tokens.json")
        run.client_before = self.store_file("client_info.json")
        stderr_path = self.dir / f"run{number}.stderr"
        params = self.server_parameters(run)
        log.info("[%s] run %d: %s %s", self.mode, number, params.command, " ".join(params.args))
        try:
            with open(stderr_path, "w") as errlog:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.watch_stderr, stderr_path, run)
                    async with stdio_client(params, errlog=errlog) as (read, write):
                        async with ClientSession(read, write) as session:
                            init = await session.initialize()
                            run.handshake = f"initialize {init.protocolVersion}"
                            await work(session, run)
                    tg.cancel_scope.cancel()
        finally:
            # The process is gone (stdio_client ended it): what it left behind is final.
            await anyio.sleep(0.2)
            run.stderr = stderr_path.read_text(errors="replace")
            trace = self.dir / f"run{number}.trace"
            run.trace = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()] if trace.exists() else []
            launches = self.dir / f"run{number}.browser"
            run.browser_launches = launches.read_text().split() if launches.exists() else []
            run.metrics_after = read_metrics(self.as_url)
            run.tokens_after = self.store_file("tokens.json")
            run.client_after = self.store_file("client_info.json")
            if DEBUG:
                log.info("[%s] run %d stderr:\n%s", self.mode, number, run.stderr)
        return run

    async def watch_stderr(self, path: Path, run: RunRecord) -> None:
        """Plays the person reading mcp-remote's log: each authorization URL it prints is walked."""
        seen = 0
        while True:
            lines = path.read_text(errors="replace").splitlines()
            for i in range(len(lines)):
                if AUTHORIZE_PROMPT in lines[i]:
                    url = next((ln.strip() for ln in lines[i + 1 :] if ln.strip()), None)
                    if url is None:
                        break  # the URL line is not written yet
                    if i < seen:
                        continue
                    seen = i + 1
                    require(url.startswith(self.as_url + "/"), f"printed authorization URL is not on the AS: {url!r}")
                    await self.authorize(url, run)
            await anyio.sleep(0.05)

    async def authorize(self, url: str, run: RunRecord) -> None:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        if self.cimd is not None and params.get("client_id") != self.cimd.url:
            stderr = self.current_stderr(run)
            ignored = "Ignoring invalid client metadata URL" in stderr and "It must be an HTTPS URL with a path" in stderr
            require(self.cimd.url.startswith("http:") and ignored,
                    f"mcp-remote did not use the metadata document {self.cimd.url} (client_id {params.get('client_id')!r})")
            # Kept free of ports and ids: it becomes a note in the README's table.
            raise Unsupported(
                f"mcp-remote {self.version} takes only an https --client-metadata-url (isClientMetadataUrl in "
                "dist/chunk-KJCT2FXL.js) and ignores the stack's http loopback document (\"Ignoring invalid client "
                "metadata URL … It must be an HTTPS URL with a path.\"), registering dynamically instead; served over "
                "https from a CA the stack trusts (run.sh INTEROP_CIMD_CERT, test-ca.sh) the cell runs"
            )
        walked = url
        if self.narrow_first_scope is not None and not any(a for r in self.runs for a in r.authorizations):
            # The person grants less than was asked for (RFC 6749 §3.3 lets the server issue a
            # narrower scope); mcp-remote is not told.
            parts = urllib.parse.urlsplit(url)
            q = [(k, self.narrow_first_scope if k == "scope" else v) for k, v in urllib.parse.parse_qsl(parts.query)]
            walked = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))
        auth = Authorization(url=url, walked=walked, params=params)
        run.authorizations.append(auth)
        log.info("[%s] run %d: walking %s", self.mode, run.number, walked)
        await anyio.to_thread.run_sync(walk_authorization, auth)
        log.info("[%s] run %d: callback answered %s", self.mode, run.number, auth.callback_status)

    def current_stderr(self, run: RunRecord) -> str:
        return (self.dir / f"run{run.number}.stderr").read_text(errors="replace")

    # ---- what the bridge is asked to do

    async def exercise(self, session: ClientSession, run: RunRecord) -> None:
        tools = await session.list_tools()
        names = {t.name for t in tools.tools}
        require(WANTED_TOOLS <= names, f"run {run.number}: tools/list lacks {sorted(WANTED_TOOLS - names)}")
        profile = tool_json(await session.call_tool("get_user_profile", {}))
        require(USERNAME in json.dumps(profile), f"run {run.number}: get_user_profile does not name {USERNAME}: {profile}")
        title = f"mcp-remote {self.mode} run {run.number} {time.time():.0f}"
        note = tool_json(await session.call_tool("create_secure_note", {"title": title, "content": "written through mcp-remote"}))
        require(title in json.dumps(note), f"run {run.number}: create_secure_note does not carry the title: {note}")
        res = await session.read_resource(AnyUrl("user://profile"))
        body = getattr(res.contents[0], "text", None) if res.contents else None
        require(body is not None and USERNAME in body, f"run {run.number}: user://profile does not name {USERNAME}: {body!r}")
        if run.number == 3:
            usage = tool_json(await session.call_tool("get_api_usage", {}))
            require(isinstance(usage, (dict, list)), f"run 3: get_api_usage: {usage!r}")

    async def exercise_gateway(self, session: ClientSession, run: RunRecord) -> None:
        """server-everything behind the gateway, through the bridge: tools, progress, a
        resource and a prompt."""
        names: set[str] = set()
        for _ in range(50):
            names = {t.name for t in (await session.list_tools()).tools}
            if "echo" in names:
                break
            await anyio.sleep(0.1)
        require("echo" in names and "get-sum" in names, f"tools: {sorted(names)}")
        require("get-env" not in names, "get-env is outside the policy but listed")
        echo = await session.call_tool("echo", {"message": "hi"})
        require(echo.content[0].text == "Echo: hi", f"echo: {echo}")
        progress: list[float] = []

        async def on_progress(p: float, total: float | None, message: str | None) -> None:
            progress.append(p)

        await session.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress)
        for _ in range(40):
            if len(progress) >= 3:
                break
            await anyio.sleep(0.05)
        require(len(progress) >= 3, f"progress notifications: {progress}")
        resources = (await session.list_resources()).resources
        static = [r for r in resources if str(r.uri).startswith("demo://resource/static/")]
        require(bool(static), f"resources: {resources[:3]}")
        read = await session.read_resource(static[0].uri)
        require(bool(read.contents), "empty resource")
        prompt = await session.get_prompt("simple-prompt")
        require(bool(prompt.messages), "empty prompt")
        run.gateway = f"{len(names)} tools, {len(progress)} progress, resource, prompt"

    # ---- the checks

    def expected_auth_scheme(self, client: dict | None) -> tuple[str | None, bool]:
        """(Authorization scheme, client_secret in body) a token request of this client must use."""
        method = (client or {}).get("token_endpoint_auth_method") or "none"
        if self.mode == "preregistered":
            method = "none"
        return {"client_secret_basic": ("basic", False), "client_secret_post": (None, True)}.get(method, (None, False))

    def check_token_request(self, entry: dict[str, Any], client: dict | None, what: str) -> None:
        scheme, secret_in_body = self.expected_auth_scheme(client)
        require(entry.get("status") == 200, f"{what} answered {entry.get('status')}: {entry}")
        require(entry.get("auth_scheme") == scheme, f"{what}: Authorization scheme {entry.get('auth_scheme')!r}, wanted {scheme!r}")
        has_secret = "client_secret" in (entry.get("params") or [])
        require(has_secret == secret_in_body, f"{what}: client_secret in body is {has_secret}, wanted {secret_in_body}")
        require(entry.get("resource") == self.rs_url, f"{what}: resource {entry.get('resource')!r}, wanted {self.rs_url!r}")

    def check_first_run(self, run: RunRecord, expect_registration: str | None) -> list[str]:
        notes: list[str] = []
        rs_hits = [e for e in run.trace if e["url"] == self.rs_url]
        require(rs_hits and rs_hits[0]["status"] == 401, f"first request to the MCP endpoint was not answered 401: {rs_hits[:1]}")
        prm = "/.well-known/oauth-protected-resource" + urllib.parse.urlsplit(self.rs_url).path
        require(any(e["status"] == 200 for e in run.find("GET", prm)), f"no protected resource metadata fetched ({prm})")
        require(any(e["status"] == 200 for e in run.find("GET", "/.well-known/oauth-authorization-server")), "no authorization server metadata fetched")
        regs = run.find("POST", "/register")
        client = run.client_after
        if expect_registration is None:
            require(not regs, f"unexpected dynamic registration: {regs}")
            require(run.as_delta("http_requests_total", route="/register") in (None, 0), "the AS saw a registration")
        else:
            require(len(regs) == 1 and regs[0]["status"] == 201, f"registration: {regs}")
            sent = (regs[0].get("request") or {}).get("token_endpoint_auth_method")
            require(sent == expect_registration, f"registration request asked for {sent!r}, wanted {expect_registration!r}")
            require(client is not None, "mcp-remote stored no client_info.json")
            echoed = client.get("token_endpoint_auth_method")
            require(echoed == expect_registration, f"the AS registered {echoed!r}, wanted {expect_registration!r}")
            require(bool(client.get("client_secret")) == (expect_registration != "none"), f"client_secret present: {bool(client.get('client_secret'))}")
            redirect = f"http://localhost:{self.port}{self.callback_path}"
            require(client.get("redirect_uris") == [redirect], f"registered redirect_uris {client.get('redirect_uris')}, wanted [{redirect!r}]")
            how = " (--static-oauth-client-metadata; by default it registers none when the AS lists it)" if echoed != "none" else ""
            notes.append(f"registered {echoed} as {regs[0]['request'].get('client_name')!r}{how}")
        require(len(run.authorizations) >= 1, "no authorization URL was printed")
        first = run.authorizations[0]
        p = first.params
        if self.cimd is not None:
            want_client = self.cimd.url
        elif expect_registration is None:
            want_client = PREREGISTERED_CLIENT_ID
        else:
            want_client = (client or {}).get("client_id")
        require(p.get("client_id") == want_client, f"authorization client_id {p.get('client_id')!r}, wanted {want_client!r}")
        require(p.get("code_challenge_method") == "S256" and p.get("code_challenge"), f"authorization lacks S256 PKCE: {first.url}")
        require(p.get("state"), "authorization request has no state")
        require(p.get("resource") == self.rs_url, f"authorization resource {p.get('resource')!r}, wanted {self.rs_url!r}")
        require(p.get("redirect_uri") == f"http://localhost:{self.port}{self.callback_path}", f"redirect_uri {p.get('redirect_uri')!r}")
        for a in run.authorizations:
            require(a.callback_status == 200 and "Authorization successful" in a.callback_body,
                    f"mcp-remote's callback answered {a.callback_status}: {_text_excerpt(a.callback_body)}")
        require(len(run.browser_launches) == len(run.authorizations),
                f"{len(run.browser_launches)} browser launches for {len(run.authorizations)} printed authorization URLs")
        codes = run.token_grants("authorization_code")
        require(len(codes) == len(run.authorizations), f"{len(codes)} code exchanges for {len(run.authorizations)} authorizations: {codes}")
        for c in codes:
            self.check_token_request(c, client, "code exchange")
        delta = run.as_delta("tokens_issued_total", grant_type="authorization_code")
        require(delta in (None, len(codes)), f"the AS issued {delta} tokens for codes, the trace shows {len(codes)}")
        require(run.tokens_after and run.tokens_after.get("access_token") and run.tokens_after.get("refresh_token"),
                "mcp-remote stored no access and refresh token")
        if self.cimd is not None:
            notes.append(f"client_id is the https metadata document, fetched {self.cimd.fetches} time(s) by the AS")
        elif expect_registration is None:
            notes.append(f"--static-oauth-client-info client_id {PREREGISTERED_CLIENT_ID}, no registration")
        notes.append(f"run 1 signed in ({p.get('scope')!r} for {p.get('resource')})")
        return notes

    def check_no_login(self, run: RunRecord) -> None:
        n = run.number
        require(AUTHORIZE_PROMPT not in run.stderr, f"run {n} printed an authorization URL")
        require(not run.authorizations and not run.browser_launches, f"run {n} tried to open a browser: {run.browser_launches}")
        require("OAuth callback server running" not in run.stderr, f"run {n} started its callback server")
        require(not run.find("POST", "/register"), f"run {n} registered again")
        require(not run.token_grants("authorization_code"), f"run {n} exchanged a code")
        for route in ("/authorize", "/register", "/login", "/consent"):
            d = run.as_delta("http_requests_total", route=route)
            require(d in (None, 0), f"run {n}: the AS saw {d:.0f} requests to {route}")
        require(run.client_after == run.client_before, f"run {n} changed the stored client registration")

    def check_refreshes(self, run: RunRecord) -> list[dict[str, Any]]:
        refreshes = run.token_grants("refresh_token")
        for r in refreshes:
            self.check_token_request(r, run.client_after, f"run {run.number} refresh grant")
        delta = run.as_delta("tokens_issued_total", grant_type="refresh_token")
        require(delta in (None, len(refreshes)), f"run {run.number}: the AS refreshed {delta} times, the trace shows {len(refreshes)}")
        return refreshes

    # ---- the cell

    def configure(self) -> str | None:
        """Sets the flags for this mode; returns the registration method expected (None: none)."""
        if self.mode == "dcr-public":
            return "none"
        if self.mode in ("dcr-client_secret_basic", "dcr-client_secret_post"):
            method = self.mode[len("dcr-") :]
            # mcp-remote registers as `none` whenever the AS lists it; the documented override.
            self.extra_args += ["--static-oauth-client-metadata", json.dumps({"token_endpoint_auth_method": method})]
            return method
        if self.mode == "preregistered":
            # The demo client's redirect URIs are http://{127.0.0.1,localhost}/callback (any port).
            self.callback_path = "/callback"
            self.extra_args += ["--static-oauth-client-info", json.dumps({"client_id": PREREGISTERED_CLIENT_ID})]
            return None
        if self.mode == "step-up":
            self.narrow_first_scope = "mcp:read"
            return "none"
        if self.mode == "cimd":
            return None
        raise ValueError(self.mode)

    async def run(self) -> str:
        if self.mode in GATEWAY_MODES:
            # One run through the bridge: its own sign-in, then server-everything's features.
            run1 = await self.bridge(1, self.exercise_gateway)
            notes = self.check_first_run(run1, "none")
            return "; ".join([run1.handshake, *notes, run1.gateway])
        expect_registration = self.configure()
        if self.mode == "cimd":
            with MetadataDocumentServer(f"http://localhost:{self.port}{self.callback_path}") as doc:
                self.cimd = doc
                self.extra_args += ["--client-metadata-url", doc.url]
                return await self.three_runs(expect_registration)
        return await self.three_runs(expect_registration)

    async def three_runs(self, expect_registration: str | None) -> str:
        notes: list[str] = []
        run1 = await self.bridge(1, self.exercise)
        notes += self.check_first_run(run1, expect_registration)
        if self.cimd is not None:
            require(self.cimd.fetches > 0, "the authorization server never fetched the metadata document")
        if self.mode == "step-up":
            notes.append(self.check_step_up(run1))
        else:
            require(len(run1.authorizations) == 1, f"run 1 signed in {len(run1.authorizations)} times")
        refreshes1 = self.check_refreshes(run1)

        run2 = await self.bridge(2, self.exercise)
        self.check_no_login(run2)
        refreshes2 = self.check_refreshes(run2)
        notes.append(f"run 2 (new process) without login")

        # Wait out the access token mcp-remote holds now.
        held = run2.tokens_after or {}
        expires_at = held.get("expires_at")
        require(isinstance(expires_at, (int, float)), f"stored tokens carry no expires_at: {sorted(held)}")
        lifetime = held.get("expires_in")
        require(isinstance(lifetime, (int, float)) and lifetime <= MAX_REFRESH_WAIT,
                f"access token lives {lifetime}s; the refresh check needs a short lifetime (stack: AUTHZ_ACCESS_TOKEN_TTL=6)")
        wait = expires_at / 1000 + 1.0 - time.time()
        log.info("[%s] waiting %.1fs for the stored access token to expire", self.mode, max(wait, 0))
        if wait > 0:
            await anyio.sleep(wait)
        run3 = await self.bridge(3, self.exercise)
        self.check_no_login(run3)
        refreshes3 = self.check_refreshes(run3)
        require(refreshes3, "run 3: no refresh_token grant although the stored access token had expired")
        before, after = run3.tokens_before or {}, run3.tokens_after or {}
        require(after.get("access_token") and after.get("access_token") != before.get("access_token"), "run 3: the stored access token did not change")
        require(after.get("refresh_token") and after.get("refresh_token") != before.get("refresh_token"), "run 3: the stored refresh token did not change (rotation)")
        require(after.get("expires_at", 0) > time.time() * 1000 - 60_000, "run 3: the stored token is not a fresh one")
        notes.append(
            f"run 3 after expiry refreshed ({len(refreshes3)} refresh grant(s), access and refresh token rotated in the store)"
        )
        counts = [len(refreshes1), len(refreshes2), len(refreshes3)]
        notes.append(f"refresh grants per run {counts}: mcp-remote refreshes before every request once a token is within 60 s of expiry")
        if max(counts) > 1:
            OBSERVED.add(REFRESH_NOTE)
        return "; ".join([run1.handshake] + notes)

    def check_step_up(self, run: RunRecord) -> str:
        denied = [e for e in run.trace if e["url"] == self.rs_url and e["status"] == 403]
        require(denied and "insufficient_scope" in (denied[0].get("www_authenticate") or ""), f"no 403 insufficient_scope seen: {denied}")
        require(len(run.authorizations) == 2, f"{len(run.authorizations)} authorizations in run 1, wanted 2 (re-authorization)")
        first, second = run.authorizations
        require(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first.walked).query)).get("scope") == "mcp:read", "the first grant was not narrowed")
        asked = (second.params.get("scope") or "").split()
        require("mcp:write" in asked, f"re-authorization asked for scope {second.params.get('scope')!r}")
        granted = (run.tokens_after or {}).get("scope", "")
        require("mcp:write" in granted.split(), f"stored token after step-up has scope {granted!r}")
        challenged = _auth_param(denied[0].get("www_authenticate") or "", "scope")
        return f"403 insufficient_scope scope={challenged!r}, re-authorized for {second.params.get('scope')!r}"


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) if isinstance(exc, CellFailure) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:600]


def find_cause(exc: BaseException, kind: type) -> BaseException | None:
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = find_cause(sub, kind)
            if found:
                return found
    if exc.__cause__ is not None:
        return find_cause(exc.__cause__, kind)
    if exc.__context__ is not None and not exc.__suppress_context__:
        return find_cause(exc.__context__, kind)
    return None


async def run_cell(as_url: str, rs_url: str, mode: str, workdir: Path, version: str) -> dict[str, str]:
    cell = Cell(as_url, rs_url, mode, workdir, version)
    started = time.time()
    result, detail = "pass", ""
    try:
        with anyio.fail_after(CELL_TIMEOUT):
            detail = await cell.run()
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        unsupported = find_cause(e, Unsupported)
        if unsupported is not None:
            result, detail = "unsupported", str(unsupported)
        else:
            failure = find_cause(e, CellFailure)
            result, detail = "fail", describe(failure or e)
            if isinstance(e, TimeoutError) and not failure:
                detail = f"timed out after {CELL_TIMEOUT:.0f}s"
            log.error("[%s] failed:\n%s", mode, "".join(traceback.format_exception(e)))
            for run in cell.runs:
                log.error("[%s] run %d trace:\n%s", mode, run.number, "\n".join(json.dumps(x) for x in run.trace))
                log.error("[%s] run %d stderr:\n%s", mode, run.number, run.stderr)
    log.info("[%s] %s in %.1fs %s", mode, result, time.time() - started, detail)
    return {"client": CLIENT, "version": version, "mode": mode, "result": result, "detail": detail}


# Client behaviour worth naming under the compatibility table even where every cell passes.
REFRESH_NOTE = (
    "mcp-remote refreshes the access token before every request once it is within 60 s of expiry "
    "(TOKEN_EXPIRY_MARGIN_MS, not capped by the token's lifetime): with short-lived tokens that is "
    "a refresh grant per request; it works, but costs a token exchange each time "
    "(https://github.com/punkpeye/mcp-remote/issues/252)"
)
OBSERVED: set[str] = set()


async def main_async(args: argparse.Namespace) -> int:
    version = mcp_remote_version()
    workdir = Path(tempfile.mkdtemp(prefix="mcp-remote-interop-"))
    failed = False
    try:
        for mode in args.modes:
            line = await run_cell(args.as_url, args.rs_url, mode, workdir, version)
            print(json.dumps(line, separators=(",", ":")), flush=True)
            failed |= line["result"] == "fail"
        for note in sorted(OBSERVED):
            print(json.dumps({"client": CLIENT, "version": version, "note": note}, separators=(",", ":")), flush=True)
    finally:
        if os.environ.get("INTEROP_KEEP"):
            log.info("kept %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("as_url", help="authorization server base URL, e.g. http://127.0.0.1:18001")
    p.add_argument("rs_url", help="MCP endpoint URL, e.g. http://127.0.0.1:18002/mcp")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    args = p.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in args.modes if m not in MODES + GATEWAY_MODES]
    if unknown:
        p.error(f"unknown modes {unknown}")
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if DEBUG else logging.INFO,
                        format="%(asctime)s mcp-remote %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    require(PROXY_JS.exists(), f"{PROXY_JS} is missing: run run.sh (npm ci) first")
    return anyio.run(main_async, args)


if __name__ == "__main__":
    sys.exit(main())
