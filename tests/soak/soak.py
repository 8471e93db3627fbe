#!/usr/bin/env python3
"""A bounded soak; run it with `scripts/soak` (not part of scripts/test).

Two authorization servers share one PostgreSQL database (one issuer: the first one's URL) and
two resource servers share another (one resource: the first one's URL). Many users, created
with `authz-server admin user add`, sign in the way a person with a browser does (GET
/authorize, POST /login, POST /consent; each step on the other authorization server than the
step before), exchange codes, refresh, have their tokens introspected with the resource
server's credentials, revoke now and then, and call tools on either resource server over the
stateless 2026-07-28 wire, at a steady rate in all. Then every note the load generator was
told it created must be in the resource servers' database and in list_secure_notes through
both instances, with nothing extra, and the grants in the authorization servers' database
must be exactly those of the code exchanges, revoked exactly where the generator revoked;
the request counts behind get_api_usage, read after a clean shutdown, must be the calls made.
The second resource server introspects at, and reads keys and the revocation feed from, the
second authorization server.

  scripts/soak                                   # 10 minutes, 50 users, 20 requests/s
  scripts/soak --minutes 2 --users 20 --rate 40
  scripts/soak --concurrent-start                # both authorization servers start at once

PostgreSQL: SOAK_PG (default postgres://postgres@127.0.0.1:5432); its databases soak_as and
soak_rs are dropped and created again at the start (and left for a look afterwards).
Binaries: SOAK_BIN (or --bin), a directory holding authz-server and resource-server.
Standard library only. Exits 1 when any check fails.
"""
import argparse
import base64
import collections
import concurrent.futures
import csv
import hashlib
import html.parser
import http.client
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG = os.environ.get("SOAK_PG", "postgres://postgres@127.0.0.1:5432")
AS_DB, RS_DB = "soak_as", "soak_rs"
RS_ID = "soak-resource-server"
RS_SECRET = "soak-rs-" + secrets.token_hex(16)
REDIRECT = "http://127.0.0.1:8976/callback"
SCOPE = "mcp:read mcp:write"
WIRE = "2026-07-28"
REVOCATION_DELAY = 3.0  # seconds after a revocation before the generator expects refusals

# The action mix of a user who holds tokens (weights); a user without tokens signs in.
MIX = [("create_note", 24), ("list_notes", 14), ("profile", 12), ("introspect", 18),
       ("refresh", 12), ("login", 6), ("revoke", 2)]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def digest(value):
    """The store's digest of a secret (protocol/src/secret.rs): SHA-256, base64url."""
    return b64url(hashlib.sha256(value.encode()).digest())


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def basic(cid, secret):
    raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------- HTTP
class Response:
    def __init__(self, status, headers, cookies, body):
        self.status, self.headers, self.cookies, self.body = status, headers, cookies, body

    def json(self):
        return json.loads(self.body)

    def text(self):
        return self.body.decode("utf-8", "replace")


def send(port, method, path, body=None, headers=None, timeout=30):
    """One request on a new connection (each user is its own client; nothing pooled)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        raw = r.getheaders()
    finally:
        c.close()
    hdrs = {k.lower(): v for k, v in raw}
    cookies = [v for k, v in raw if k.lower() == "set-cookie"]
    return Response(r.status, hdrs, cookies, data)


class FormParser(html.parser.HTMLParser):
    """The hidden inputs of each form, by form id (as interop/python/mcp_interop.py reads them)."""

    def __init__(self):
        super().__init__()
        self.forms, self.current = {}, None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.current = a.get("id", "")
            self.forms.setdefault(self.current, {})
        elif tag == "input" and self.current is not None and a.get("type") == "hidden":
            self.forms[self.current][a.get("name", "")] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


def excerpt(body, limit=160):
    text = re.sub(r"<[^>]+>", " ", body if isinstance(body, str) else body.decode("utf-8", "replace"))
    return " ".join(text.split())[:limit]


def rpc_message(body):
    """The JSON-RPC answer in a JSON or SSE body."""
    for line in body.decode("utf-8", "replace").splitlines():
        line = line[5:] if line.startswith("data:") else line
        try:
            m = json.loads(line.strip())
        except ValueError:
            continue
        if isinstance(m, dict) and "id" in m:
            return m
    return None


# ------------------------------------------------------------------------- pacing and figures
class Pacer:
    """Hands out request slots at `rate` per second across all users. A slot more than a
    quarter of a second in the past is dropped (counted), not made up in a burst."""

    def __init__(self, rate):
        self.interval = 1.0 / rate
        self.lock = threading.Lock()
        self.next = time.monotonic()
        self.dropped = 0
        self.unlimited = False

    def wait(self):
        if self.unlimited:
            return
        with self.lock:
            now = time.monotonic()
            if self.next < now - 0.25:
                self.dropped += int((now - 0.25 - self.next) / self.interval)
                self.next = now - 0.25
            slot = self.next
            self.next += self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = collections.Counter()
        self.ok = collections.Counter()
        self.by_instance = collections.Counter()
        self.latency = collections.defaultdict(list)
        self.errors = collections.Counter()
        self.error_examples = {}
        self.violations = []
        self.flows = []  # whole sign-in walks, ms
        self.events = collections.Counter()  # facts the checks need (logins, exchanges, ...)

    def record(self, kind, inst, ms, error=None, example=None):
        with self.lock:
            self.count[kind] += 1
            self.by_instance[(kind, inst)] += 1
            self.latency[kind].append(ms)
            if error:
                self.errors[(kind, error)] += 1
                self.error_examples.setdefault((kind, error), example)
            else:
                self.ok[kind] += 1

    def violation(self, text):
        with self.lock:
            self.violations.append(f"{time.strftime('%H:%M:%S')} {text}")

    def event(self, name, n=1):
        with self.lock:
            self.events[name] += n


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


class Failed(Exception):
    """A request that did not succeed; `uncertain` when no answer came (it may have taken effect)."""

    def __init__(self, what, uncertain, response=None):
        super().__init__(what)
        self.uncertain, self.response = uncertain, response


def oauth_error(r):
    try:
        e = r.json().get("error")
        return f" {e}" if e else ""
    except (ValueError, AttributeError):
        return ""


# ------------------------------------------------------------------------- the load generator
class Grant:
    def __init__(self, user, access, refresh, via):
        self.user, self.access, self.refresh = user, access, refresh
        self.refresh_digests = [digest(refresh)]
        self.jtis = [jwt_claims(access)["jti"]]
        self.revoked = False     # revoked by the generator (its /revoke answered 200)
        self.uncertain = False   # a revoke or refresh got no answer: revoked or not, either is right
        self.lost = False        # a refresh was refused: the generator stopped using it
        self.via = via


class World:
    def __init__(self, args, ports, client_id, stats, pacer):
        self.args, self.stats, self.pacer = args, stats, pacer
        self.client_id = client_id
        self.as_inst = [("as1", ports["as1"]), ("as2", ports["as2"])]
        self.rs_inst = [("rs1", ports["rs1"]), ("rs2", ports["rs2"])]
        self.issuer = f"http://127.0.0.1:{ports['as1']}"
        self.resource = f"http://127.0.0.1:{ports['rs1']}/mcp"
        self.rs_auth = basic(RS_ID, RS_SECRET)


class User:
    def __init__(self, world, name, password, sub, seed):
        self.w, self.name, self.password, self.sub = world, name, password, sub
        self.rng = random.Random(seed)
        self.as_turn = self.rng.randrange(2)
        self.rs_turn = self.rng.randrange(2)
        self.notes = {}             # id -> (title, content): created, with a success answer
        self.uncertain_titles = set()
        self.grants = []            # every successful code exchange, in order
        self.uncertain_exchanges = 0
        self.current = None
        self.pending_revoked = []   # (monotonic time of revocation, access token)
        self.seq = 0
        self.rpc_id = 0
        self.tool_ok = collections.Counter()     # tools/call answered with success, by tool
        self.tool_tried = collections.Counter()  # tools/call sent with a live token, by tool
        self.last_ms = 0.0

    # -- plumbing
    def next_as(self):
        self.as_turn ^= 1
        return self.w.as_inst[self.as_turn]

    def next_rs(self):
        self.rs_turn ^= 1
        return self.w.rs_inst[self.rs_turn]

    def req(self, kind, inst, method, path, body=None, headers=None, check=None, paced=True):
        """One request, paced and recorded. `check(response)` returns None when it is the
        expected answer, else the error class."""
        if paced:
            self.w.pacer.wait()
        name, port = inst
        t0 = time.perf_counter()
        try:
            r = send(port, method, path, body, headers)
        except Exception as e:  # no answer: connection refused, reset, timeout
            ms = (time.perf_counter() - t0) * 1000
            cls = type(e).__name__
            self.w.stats.record(kind, name, ms, cls, f"{method} {name}{path[:80]}: {e!r}")
            raise Failed(f"{kind} on {name}: {e!r}", True)
        ms = self.last_ms = (time.perf_counter() - t0) * 1000
        err = (check or (lambda x: None if x.status == 200 else f"HTTP {x.status}{oauth_error(x)}"))(r)
        if err:
            self.w.stats.record(kind, name, ms, err,
                                f"{method} {name}{path[:80]} -> {r.status} {excerpt(r.body)}")
            raise Failed(f"{kind} on {name}: {err}", False, r)
        self.w.stats.record(kind, name, ms)
        return r

    def mcp(self, kind, tool, arguments, token, paced=True, expect_status=200):
        inst = self.next_rs()
        self.rpc_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.rpc_id, "method": "tools/call", "params": {
            "name": tool, "arguments": arguments, "_meta": {
                "io.modelcontextprotocol/protocolVersion": WIRE,
                "io.modelcontextprotocol/clientInfo": {"name": "soak", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}}}})
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": WIRE, "Mcp-Method": "tools/call", "Mcp-Name": tool,
                   "Authorization": f"Bearer {token}"}
        holder = {}

        def check(r):
            if r.status != expect_status:
                return f"HTTP {r.status}"
            if expect_status != 200:
                return None
            m = rpc_message(r.body)
            if m is None:
                return "no JSON-RPC answer"
            if "error" in m:
                return f"JSON-RPC error {m['error'].get('code')}"
            res = m.get("result") or {}
            if res.get("isError"):
                return "tool error"
            try:
                holder["value"] = json.loads(res["content"][0]["text"])
            except (KeyError, IndexError, ValueError, TypeError):
                return "unreadable tool result"
            return None

        if expect_status == 200:
            self.tool_tried[tool] += 1
        self.req(kind, inst, "POST", "/mcp", body, headers, check, paced)
        if expect_status == 200:
            self.tool_ok[tool] += 1
        return inst[0], holder.get("value")

    # -- actions
    def login(self, paced=True):
        """The authorization walk through the login and consent forms, then the code exchange."""
        w = self.w
        cookies = {}
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(12)
        q = {"response_type": "code", "client_id": w.client_id, "redirect_uri": REDIRECT,
             "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
             "code_challenge_method": "S256", "scope": SCOPE, "resource": w.resource, "state": state}
        if self.rng.random() < 0.5:
            q["prompt"] = "consent"  # the consent form every time, not only the first
        path, form, kind = "/authorize?" + urllib.parse.urlencode(q), None, "authorize"
        walk_ms = 0.0  # the walk's requests, not the pacing between them
        code = None
        for _ in range(8):
            inst = self.next_as()
            headers = {"Accept": "text/html"}
            if cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            if form is None:
                r = self.req(kind, inst, "GET", path, None, headers,
                             lambda x: None if x.status in (200, 303) else f"HTTP {x.status}", paced)
            else:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                r = self.req(kind, inst, "POST", path, urllib.parse.urlencode(form), headers,
                             lambda x: None if x.status == 303 else f"HTTP {x.status}", paced)
            walk_ms += self.last_ms
            for c in r.cookies:
                nv = c.split(";", 1)[0]
                k, _, v = nv.partition("=")
                if re.search(r";\s*max-age=0\b", c, re.I):
                    cookies.pop(k.strip(), None)
                else:
                    cookies[k.strip()] = v.strip()
            if r.status == 303:
                loc = r.headers.get("location", "")
                if loc.startswith(REDIRECT):
                    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
                    if params.get("state") != state:
                        w.stats.violation(f"{self.name}: state {params.get('state')!r} came back, sent {state!r}")
                    if params.get("iss") != w.issuer:
                        w.stats.violation(f"{self.name}: iss {params.get('iss')!r} from {inst[0]}, issuer is {w.issuer}")
                    code = params.get("code")
                    if not code:
                        w.stats.violation(f"{self.name}: redirect without code: {loc[:200]}")
                        raise Failed("no code", False)
                    break
                parts = urllib.parse.urlsplit(loc)
                # The next step goes to the other instance: keep only path and query.
                path, form, kind = parts.path + (f"?{parts.query}" if parts.query else ""), None, "authorize_resume"
                continue
            parser = FormParser()
            parser.feed(r.text())
            if "login-form" in parser.forms:
                hidden = parser.forms["login-form"]
                path, kind = "/login", "login"
                form = {"username": self.name, "password": self.password}
            elif "consent-form" in parser.forms:
                hidden = parser.forms["consent-form"]
                path, kind = "/consent", "consent"
                form = {"decision": "approve"}
            else:
                w.stats.violation(f"{self.name}: unexpected page from {inst[0]}: {excerpt(r.body)}")
                raise Failed("unexpected page", False)
            form.update(csrf_token=hidden.get("csrf_token", ""), request=hidden.get("request", ""))
        else:
            w.stats.violation(f"{self.name}: the authorization walk did not end in 8 steps")
            raise Failed("walk too long", False)
        w.stats.event("codes")
        inst = self.next_as()
        try:
            r = self.req("token_code", inst, "POST", "/token", urllib.parse.urlencode({
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "client_id": w.client_id, "code_verifier": verifier, "resource": w.resource}),
                {"Content-Type": "application/x-www-form-urlencoded"}, paced=paced)
        except Failed as e:
            if e.uncertain:
                self.uncertain_exchanges += 1
            raise
        walk_ms += self.last_ms
        tok = r.json()
        g = Grant(self, tok["access_token"], tok["refresh_token"], inst[0])
        claims = jwt_claims(g.access)
        if claims.get("sub") != self.sub or claims.get("aud") != w.resource or claims.get("iss") != w.issuer:
            w.stats.violation(f"{self.name}: token from {inst[0]} has sub {claims.get('sub')} aud {claims.get('aud')} iss {claims.get('iss')}")
        self.grants.append(g)
        self.current = g
        with w.stats.lock:
            w.stats.flows.append(walk_ms)

    def refresh(self):
        g, w = self.current, self.w
        body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": g.refresh,
                                       "client_id": w.client_id, "resource": w.resource})
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        for attempt in range(2):
            try:
                r = self.req("token_refresh", self.next_as(), "POST", "/token", body, hdrs)
                break
            except Failed as e:
                if not e.uncertain:
                    g.lost = True
                    self.current = None
                    raise
                if attempt == 1:  # the rotation may or may not have happened
                    g.uncertain = True
                    self.current = None
                    raise
                time.sleep(0.2)  # a retry within the refresh grace
        tok = r.json()
        if tok.get("refresh_token"):
            g.refresh = tok["refresh_token"]
            g.refresh_digests.append(digest(g.refresh))
        g.access = tok["access_token"]
        g.jtis.append(jwt_claims(g.access)["jti"])

    def introspect(self):
        g, w = self.current, self.w
        inst = self.next_as()
        r = self.req("introspect", inst, "POST", "/introspect",
                     urllib.parse.urlencode({"token": g.access}),
                     {"Content-Type": "application/x-www-form-urlencoded", "Authorization": w.rs_auth})
        j = r.json()
        want = {"active": True, "username": self.name, "sub": self.sub, "client_id": w.client_id}
        got = {k: j.get(k) for k in want}
        if got != want:
            w.stats.violation(f"{self.name}: introspection at {inst[0]} answered {got}, expected {want}")

    def create_note(self):
        self.seq += 1
        title = f"soak {self.name} #{self.seq} {secrets.token_hex(4)}"
        content = f"{secrets.token_hex(12)}: note {self.seq} of {self.name}"
        try:
            inst, v = self.mcp("mcp_create_note", "create_secure_note",
                               {"title": title, "content": content}, self.current.access)
        except Failed as e:
            if e.uncertain:
                self.uncertain_titles.add(title)
            raise
        if not v or not v.get("id") or v.get("title") != title:
            self.w.stats.violation(f"{self.name}: create_secure_note via {inst} answered {v}")
            self.uncertain_titles.add(title)
            return
        self.notes[v["id"]] = (title, content)

    def check_listing(self, notes, inst, when):
        ids = {n.get("id"): n.get("title") for n in notes.get("notes", [])}
        missing = [i for i in self.notes if i not in ids]
        extra = [i for i, t in ids.items() if i not in self.notes and t not in self.uncertain_titles]
        wrong = [i for i in self.notes if i in ids and ids[i] != self.notes[i][0]]
        if missing or extra or wrong or notes.get("count") != len(ids):
            self.w.stats.violation(
                f"{self.name}: list_secure_notes via {inst} ({when}): {len(ids)} listed, count "
                f"{notes.get('count')}, {len(self.notes)} created; missing {missing[:3]} extra "
                f"{extra[:3]} wrong title {wrong[:3]}")
            return False
        return True

    def list_notes(self):
        inst, v = self.mcp("mcp_list_notes", "list_secure_notes", {}, self.current.access)
        # Every note this user was told was created (on either instance) must be listed.
        self.check_listing(v or {}, inst, "during the run")

    def profile(self):
        inst, v = self.mcp("mcp_get_profile", "get_user_profile", {}, self.current.access)
        v = v or {}
        if v.get("id") != self.sub or v.get("username") != self.name or v.get("client_id") != self.w.client_id \
                or "mcp:write" not in (v.get("scopes") or []):
            self.w.stats.violation(f"{self.name}: get_user_profile via {inst} answered {v}")

    def revoke(self):
        g, w = self.current, self.w
        self.current = None
        try:
            self.req("revoke", self.next_as(), "POST", "/revoke", urllib.parse.urlencode(
                {"token": g.refresh, "token_type_hint": "refresh_token", "client_id": w.client_id}),
                {"Content-Type": "application/x-www-form-urlencoded"})
        except Failed:
            g.uncertain = True
            raise
        g.revoked = True
        self.pending_revoked.append((time.monotonic(), g.access))

    def check_revoked(self):
        """A revoked grant's access token: refused by a resource server and inactive at
        introspection, a few seconds (the revocation feed's poll) after the revocation."""
        _, token = self.pending_revoked.pop(0)
        w = self.w
        try:
            self.mcp("mcp_revoked_token", "get_user_profile", {}, token, expect_status=401)
        except Failed as e:
            if not e.uncertain:
                w.stats.violation(f"{self.name}: a revoked token was not refused by a resource server "
                                  f"{REVOCATION_DELAY:.0f} s after the revocation: {e}")
        inst = self.next_as()
        try:
            r = self.req("introspect_revoked", inst, "POST", "/introspect",
                         urllib.parse.urlencode({"token": token}),
                         {"Content-Type": "application/x-www-form-urlencoded", "Authorization": w.rs_auth})
            if r.json() != {"active": False}:
                w.stats.violation(f"{self.name}: introspection of a revoked token at {inst[0]} answered {r.json()}")
        except Failed:
            pass

    def step(self):
        if self.pending_revoked and time.monotonic() - self.pending_revoked[0][0] > REVOCATION_DELAY:
            return self.check_revoked()
        if self.current is None:
            return self.login()
        action = self.rng.choices([m[0] for m in MIX], [m[1] for m in MIX])[0]
        getattr(self, action)()

    def run(self, deadline):
        while time.monotonic() < deadline:
            try:
                self.step()
            except Failed:
                time.sleep(0.05)
            except Exception as e:  # a bug in the generator or an answer it cannot read
                self.w.stats.violation(f"{self.name}: generator exception {e!r}")
                self.w.stats.record("generator", "-", 0, type(e).__name__, repr(e))
                time.sleep(0.5)


# ------------------------------------------------------------------------- processes and databases
def psql(sql, db="postgres"):
    subprocess.run(["psql", f"{PG}/{db}", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def query(sql, db):
    out = subprocess.run(["psql", f"{PG}/{db}", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                          f"COPY ({sql}) TO STDOUT WITH CSV"], check=True, capture_output=True, text=True).stdout
    return list(csv.reader(io.StringIO(out)))


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def metrics(port):
    """name{labels} -> value, from /metrics."""
    out = {}
    try:
        r = send(port, "GET", "/metrics", timeout=10)
    except OSError:
        return out
    for line in r.text().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def metric_sum(m, name, labels=""):
    return sum(v for k, v in m.items() if (k == name or k.startswith(name + "{")) and labels in k)


class Servers:
    def __init__(self, work):
        self.work, self.procs = work, {}

    def start(self, name, argv, env):
        out = open(os.path.join(self.work, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs[name] = p
        return p

    def wait_ready(self, name, port, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if self.procs[name].poll() is not None:
                raise SystemExit(f"{name} exited with {self.procs[name].returncode} at start-up; "
                                 f"its log:\n{self.log_tail(name)}")
            try:
                if send(port, "GET", "/readyz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{name} was not ready within {timeout}s; its log:\n{self.log_tail(name)}")

    def log_tail(self, name, n=30):
        with open(os.path.join(self.work, f"{name}.log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def admin(bin_dir, env, *argv, password=None):
    e = {**os.environ, **env}
    if password is not None:
        e["AUTHZ_NEW_PASSWORD"] = password
    out = subprocess.run([f"{bin_dir}/authz-server", "admin", *argv], env=e, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"authz-server admin {' '.join(argv)} failed: {out.stdout}{out.stderr}")
    return out.stdout


# ------------------------------------------------------------------------- the run
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the load (default 10)")
    p.add_argument("--users", type=int, default=50, help="users signing in and calling tools (default 50)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second in all (default 20)")
    p.add_argument("--seed", type=int, default=None, help="seed of the action mix")
    p.add_argument("--bin", default=os.environ.get("SOAK_BIN") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug"),
        help="directory with authz-server and resource-server (default $SOAK_BIN)")
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs even on PASS")
    p.add_argument("--concurrent-start", action="store_true",
                   help="start both authorization servers at once on the new database (by default "
                        "the second starts once the first is ready)")
    args = p.parse_args()
    if args.users < 1 or args.rate <= 0 or args.minutes <= 0:
        raise SystemExit("--users, --rate and --minutes must be positive")
    for b in ("authz-server", "resource-server"):
        if not os.access(os.path.join(args.bin, b), os.X_OK):
            raise SystemExit(f"{args.bin}/{b} not found: build it or pass --bin / SOAK_BIN")
    if subprocess.run(["psql", f"{PG}/postgres", "-qc", "select 1"], capture_output=True).returncode != 0:
        raise SystemExit(f"PostgreSQL at {PG} is not reachable (set SOAK_PG)")
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    work = tempfile.mkdtemp(prefix="mcp-soak-")
    t_begin = time.time()

    ports = {n: free_port() for n in ("as1", "as2", "rs1", "rs2")}
    issuer = f"http://127.0.0.1:{ports['as1']}"
    resource = f"http://127.0.0.1:{ports['rs1']}/mcp"
    for db in (AS_DB, RS_DB):
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        psql(f"CREATE DATABASE {db}")
    as_env = {
        "RUST_LOG": "warn", "AUTHZ_ISSUER": issuer, "AUTHZ_DATABASE_URL": f"{PG}/{AS_DB}",
        "AUTHZ_RESOURCE": resource, "AUTHZ_RESOURCE_CLIENT_ID": RS_ID,
        "AUTHZ_RESOURCE_CLIENT_SECRET": RS_SECRET, "AUTHZ_RESOURCE_MACHINE_CLIENTS": "true",
        # All the load comes from 127.0.0.1: the per-address quotas would be the figure.
        "AUTHZ_REQUESTS_PER_MINUTE_PER_ADDRESS": "0", "AUTHZ_REQUESTS_PER_MINUTE_PER_CLIENT": "0",
        "AUTHZ_REGISTRATIONS_PER_HOUR": "100000",
    }
    for k in [k for k in os.environ if k.startswith(("AUTHZ_", "RS_")) or k == "DATABASE_URL"]:
        os.environ.pop(k)  # nothing from the caller's environment changes the topology
    servers = Servers(work)
    log(f"== soak: {args.minutes:g} min, {args.users} users, {args.rate:g} requests/s, seed {seed}")
    log(f"   AS {ports['as1']} and {ports['as2']} (issuer {issuer}), RS {ports['rs1']} and "
        f"{ports['rs2']} (resource {resource}), PostgreSQL {PG}/{{{AS_DB},{RS_DB}}}, logs in {work}")
    try:
        # Migrations once, before either instance starts (as the README's deployment does).
        out = subprocess.run([f"{args.bin}/authz-server", "migrate"], env={**os.environ, **as_env},
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"authz-server migrate failed: {out.stdout}{out.stderr}")
        client_out = admin(args.bin, as_env, "client", "add", "--name", "soak", "--redirect-uri", REDIRECT)
        m = re.search(r"client_id\W+(\S+)", client_out)
        if not m:
            raise SystemExit(f"no client_id in: {client_out}")
        client_id = m.group(1)
        names = [f"soak{i:03d}" for i in range(1, args.users + 1)]
        passwords = {n: secrets.token_urlsafe(15) for n in names}
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda n: admin(args.bin, as_env, "user", "add", n, "--email", f"{n}@soak.test",
                                        password=passwords[n]), names))
        log(f"   {args.users} users added with `authz-server admin user add` in {time.time() - t0:.1f} s")
        subs = {u: i for i, u in query("SELECT id, username FROM users", AS_DB)}
        if set(subs) != set(names):
            raise SystemExit(f"users in the database: {sorted(subs)[:5]}…, expected {names[:5]}…")

        for n in ("as1", "as2"):
            servers.start(n, [f"{args.bin}/authz-server", "serve"],
                          {**as_env, "AUTHZ_BIND": f"127.0.0.1:{ports[n]}"})
            if not args.concurrent_start:
                servers.wait_ready(n, ports[n])
        for n in ("as1", "as2"):
            servers.wait_ready(n, ports[n])
        # One issuer, one key set: a token signed by either instance verifies at the other.
        jwks = {n: sorted(k["kid"] for k in json.loads(send(ports[n], "GET", "/jwks.json").body)["keys"])
                for n in ("as1", "as2")}
        key_rows = query("SELECT kid, coalesce(retired_at::text, 'active') FROM signing_keys", AS_DB)
        for i, n in enumerate(("rs1", "rs2")):
            # The second resource server introspects, fetches keys and reads the revocation
            # feed at the second authorization server: both serve the one issuer.
            as_url = f"http://127.0.0.1:{ports['as1' if i == 0 else 'as2']}"
            env = {"RUST_LOG": "warn", "RS_BIND": f"127.0.0.1:{ports[n]}", "RS_RESOURCE": resource,
                   "RS_ISSUER": issuer, "RS_CLIENT_ID": RS_ID, "RS_CLIENT_SECRET": RS_SECRET,
                   "RS_DATABASE_URL": f"{PG}/{RS_DB}", "RS_ACCEPT_MACHINE_CLIENTS": "true",
                   "RS_INTROSPECTION_ENDPOINT": f"{as_url}/introspect", "RS_JWKS_URI": f"{as_url}/jwks.json",
                   "RS_REVOCATION_FEED": f"{as_url}/revocations"}
            if i == 1:
                env["RS_ALLOWED_HOSTS"] = f"127.0.0.1:{ports[n]}"
            servers.start(n, [f"{args.bin}/resource-server"], env)
            servers.wait_ready(n, ports[n])  # one at a time: each migrates the shared database
        pids = {n: p.pid for n, p in servers.procs.items()}
        rss_start = {n: rss_mib(pid) for n, pid in pids.items()}
        metrics_start = {n: metrics(ports[n]) for n in ports}
        log("   servers ready; load starts")

        stats, pacer = Stats(), Pacer(args.rate)
        world = World(args, ports, client_id, stats, pacer)
        rng = random.Random(seed)
        users = [User(world, n, passwords[n], subs[n], rng.randrange(1 << 30)) for n in names]
        start = time.monotonic()
        deadline = start + args.minutes * 60
        samples = []
        stop_sampling = threading.Event()

        def sampler():
            last = 0
            while not stop_sampling.wait(10):
                with stats.lock:
                    total, errs = sum(stats.count.values()), sum(stats.errors.values())
                samples.append((time.monotonic() - start, {n: rss_mib(pid) for n, pid in pids.items()},
                                total, errs))
                if int((time.monotonic() - start) // 60) > last:
                    last = int((time.monotonic() - start) // 60)
                    r = samples[-1][1]
                    log(f"   {last} min: {total} requests, {errs} errors, RSS " +
                        " ".join(f"{n} {v:.0f}" for n, v in r.items()) + " MiB")

        threading.Thread(target=sampler, daemon=True).start()
        threads = [threading.Thread(target=u.run, args=(deadline,), daemon=True) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        stop_sampling.set()
        alive_after_load = {n: p.poll() is None for n, p in servers.procs.items()}
        rss_end = {n: rss_mib(pid) for n, pid in pids.items()}
        metrics_end = {n: metrics(ports[n]) for n in ports}
        load_counts = dict(stats.count)
        load_errors = dict(stats.errors)
        load_total = sum(load_counts.values())

        # ---------------------------------------------------------------- final consistency
        log("   load over; consistency checks")
        pacer.unlimited = True
        time.sleep(1.5)  # past one poll of the revocation feed
        final_listing = collections.Counter()
        final_listing_bad = []
        for u in users:
            if u.current is None:
                try:
                    u.login(paced=False)  # a token for the final listing, unpaced
                except Failed as e:
                    final_listing_bad.append(f"{u.name}: no token for the final listing: {e}")
                    continue
            for _ in range(2):  # next_rs alternates: once through each instance
                try:
                    inst, v = u.mcp("final_list_notes", "list_secure_notes", {}, u.current.access, paced=False)
                except Failed as e:
                    final_listing_bad.append(f"{u.name}: final list_secure_notes failed: {e}")
                    continue
                final_listing[inst] += 1
                if not u.check_listing(v or {}, inst, "after the run"):
                    final_listing_bad.append(f"{u.name}: listing via {inst} differs (see violations)")
        for u in users:  # revocations made in the final logins' wake, none expected
            u.pending_revoked.clear()

        sub_user = {u.sub: u for u in users}
        db_notes = query("SELECT user_sub, id, title, content FROM notes", RS_DB)
        note_problems = []
        by_user = collections.defaultdict(dict)
        for sub, nid, title, content in db_notes:
            if sub not in sub_user:
                note_problems.append(f"note {nid} of an unknown user {sub}")
                continue
            by_user[sub][nid] = (title, content)
        uncertain_present = 0
        for u in users:
            have = by_user.get(u.sub, {})
            for nid, tc in u.notes.items():
                if nid not in have:
                    note_problems.append(f"{u.name}: note {nid} ({tc[0]!r}) was created but is not in the database")
                elif have[nid] != tc:
                    note_problems.append(f"{u.name}: note {nid} is {have[nid]!r} in the database, created as {tc!r}")
            for nid, (title, _) in have.items():
                if nid in u.notes:
                    continue
                if title in u.uncertain_titles:
                    uncertain_present += 1
                else:
                    note_problems.append(f"{u.name}: note {nid} ({title!r}) is in the database but was never created")
        notes_recorded = sum(len(u.notes) for u in users)
        notes_uncertain = sum(len(u.uncertain_titles) for u in users)

        grant_rows = query("SELECT g.id, coalesce(u.username, ''), g.client_id, g.resource, g.scope, "
                           "coalesce(g.revoked_at::text, '') FROM grants g LEFT JOIN users u ON u.id = g.user_id",
                           AS_DB)
        rt_rows = dict(query("SELECT token_hash, grant_id FROM refresh_tokens", AS_DB))
        jti_rows = dict(query("SELECT jti, coalesce(grant_id, '') FROM access_tokens", AS_DB))
        grants_db = {r[0]: r for r in grant_rows}
        grant_problems = []
        matched = set()
        n_revoked = n_uncertain = n_lost = 0
        for u in users:
            for g in u.grants:
                n_revoked += g.revoked
                n_uncertain += g.uncertain
                n_lost += g.lost
                ids = {rt_rows.get(d) for d in g.refresh_digests} | {jti_rows.get(j) for j in g.jtis}
                if len(ids) != 1 or None in ids:
                    grant_problems.append(f"{u.name}: one grant's refresh tokens and access tokens map to {ids}")
                    continue
                gid = ids.pop()
                if gid in matched:
                    grant_problems.append(f"{u.name}: two code exchanges share grant {gid}")
                    continue
                matched.add(gid)
                row = grants_db.get(gid)
                if row is None:
                    grant_problems.append(f"{u.name}: grant {gid} of a code exchange is not in the database")
                    continue
                _, uname, cid, res, scope, revoked_at = row
                if (uname, cid, res, set(scope.split())) != (u.name, client_id, resource, set(SCOPE.split())):
                    grant_problems.append(f"{u.name}: grant {gid} is {row[1:5]}")
                if g.uncertain:
                    continue
                if g.revoked and not revoked_at:
                    grant_problems.append(f"{u.name}: grant {gid} was revoked by the generator but is not revoked")
                if not g.revoked and revoked_at:
                    grant_problems.append(f"{u.name}: grant {gid} is revoked (at {revoked_at}) but the generator never revoked it"
                                          + (" (a refresh was refused)" if g.lost else ""))
        extra_grants = [r for gid, r in grants_db.items() if gid not in matched]
        by_user_extra = collections.Counter(r[1] for r in extra_grants)
        for u in users:
            if by_user_extra[u.name] > u.uncertain_exchanges:
                grant_problems.append(f"{u.name}: {by_user_extra[u.name]} grants in the database that no "
                                      f"code exchange made ({u.uncertain_exchanges} exchanges got no answer)")
        for name in set(by_user_extra) - set(names):
            grant_problems.append(f"{by_user_extra[name]} grants of {name or 'no user'} that no code exchange made")
        exchanges = sum(len(u.grants) for u in users)
        uncertain_exchanges = sum(u.uncertain_exchanges for u in users)
        revoked_db = sum(1 for r in grant_rows if r[5])

        alive_end = {n: p.poll() is None for n, p in servers.procs.items()}
    finally:
        servers.stop_all()

    # Request counts are written in batches; a clean shutdown writes what is waiting, so only
    # now are they final.
    usage_rows = query("SELECT user_sub, name, count FROM api_usage", RS_DB)
    usage_db = {(sub, name): int(n) for sub, name, n in usage_rows}
    usage_problems = []
    for u in users:
        for tool in sorted(set(u.tool_tried) | {name for sub, name in usage_db if sub == u.sub}):
            got = usage_db.get((u.sub, tool), 0)
            if not u.tool_ok[tool] <= got <= u.tool_tried[tool]:
                usage_problems.append(f"{u.name}: {tool} counted {got} times, called {u.tool_ok[tool]} "
                                      f"times with success ({u.tool_tried[tool]} sent)")
    for sub, name in usage_db:
        if sub not in sub_user:
            usage_problems.append(f"request counts of an unknown user {sub}")
    usage_expected = sum(sum(u.tool_ok.values()) for u in users)
    usage_total = sum(usage_db.values())

    # ---------------------------------------------------------------- logs
    log_findings = {}
    for n in servers.procs:
        with open(os.path.join(work, f"{n}.log"), errors="replace") as f:
            lines = f.read().splitlines()
        log_findings[n] = {
            "panics": [l for l in lines if "panicked" in l],
            "errors": [l for l in lines if re.search(r"\bERROR\b", l)],
            "warnings": [l for l in lines if re.search(r"\bWARN\b", l)],
        }

    # ---------------------------------------------------------------- report
    print()
    print(f"== soak: {elapsed / 60:.2f} min of load, {args.users} users, target {args.rate:g} requests/s, "
          f"seed {seed}; AS ×2 on {AS_DB}, RS ×2 on {RS_DB}; {args.bin}")
    print(f"requests during the load: {load_total} ({load_total / elapsed:.1f}/s achieved, "
          f"{pacer.dropped} slots dropped because every user was waiting on an answer)")
    print("by kind, with the final check's requests (final_list_notes, and the sign-ins of users whose "
          "last grant was revoked):")
    print(f"{'kind':<20} {'requests':>8} {'ok':>7} {'errors':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}  by instance")
    for kind in sorted(stats.count):
        lat = stats.latency[kind]
        inst = " ".join(f"{i}:{c}" for (k, i), c in sorted(stats.by_instance.items()) if k == kind)
        print(f"{kind:<20} {stats.count[kind]:>8} {stats.ok[kind]:>7} {stats.count[kind] - stats.ok[kind]:>6} "
              f"{percentile(lat, 50):>8.1f} {percentile(lat, 90):>8.1f} {percentile(lat, 99):>8.1f} "
              f"{max(lat) if lat else 0:>8.1f}  {inst}")
    if stats.flows:
        f = stats.flows
        print(f"{'(whole sign-in walk)':<20} {len(f):>8} {'':>7} {'':>6} {percentile(f, 50):>8.1f} "
              f"{percentile(f, 90):>8.1f} {percentile(f, 99):>8.1f} {max(f):>8.1f}  sum of the walk's requests and the code exchange")
    print()
    print("errors by class:" + (" none" if not stats.errors else ""))
    for (kind, cls), n in sorted(stats.errors.items()):
        print(f"  {kind:<20} {cls:<32} {n:>6}   e.g. {stats.error_examples[(kind, cls)]}"[:400])
    print()
    print(f"{'process':<8} {'pid':>8} {'RSS start MiB':>14} {'RSS end MiB':>12} {'max sampled':>12}  requests served (its /metrics)")
    for n, pid in pids.items():
        peak = max([s[1][n] for s in samples] + [rss_end[n]])
        served = metric_sum(metrics_end[n], "http_requests_total") - metric_sum(metrics_start[n], "http_requests_total")
        print(f"{n:<8} {pid:>8} {rss_start[n]:>14.1f} {rss_end[n]:>12.1f} {peak:>12.1f}  {served:.0f}")
    if samples:
        picked, minute = [], 1
        for t, s, _, _ in samples:
            if t >= minute * 60:
                picked.append((t, s))
                minute = int(t // 60) + 1
        if not picked or picked[-1][0] != samples[-1][0]:
            picked.append(samples[-1][:2])
        print(f"RSS over time, MiB ({'/'.join(pids)}): " + "; ".join(
            f"{t / 60:.1f} min " + "/".join(f"{s[n]:.0f}" for n in pids) for t, s in picked))
    print()
    print(f"code exchanges {exchanges} (+{uncertain_exchanges} without an answer), grants in the database "
          f"{len(grant_rows)}, revoked by the generator {n_revoked}, revoked in the database {revoked_db}, "
          f"uncertain {n_uncertain}, refused refreshes {n_lost}")
    print(f"notes created {notes_recorded} (+{notes_uncertain} without an answer, {uncertain_present} of those "
          f"present), notes in the database {len(db_notes)}; final listings {dict(final_listing)}")
    for n in servers.procs:
        lf = log_findings[n]
        print(f"log of {n}: {len(lf['panics'])} panics, {len(lf['errors'])} ERROR lines, {len(lf['warnings'])} WARN lines")
        for l in (lf["panics"] + lf["errors"])[:3] + lf["warnings"][:2]:
            print(f"    {l[:300]}")

    # ---------------------------------------------------------------- checks
    checks = []

    def check(ok, text):
        checks.append(ok)
        print(f"{'PASS' if ok else 'FAIL'}: {text}")

    print()
    check(jwks["as1"] == jwks["as2"] and len(key_rows) == 1,
          f"both authorization servers publish the same signing keys after start-up "
          f"({'together' if args.concurrent_start else 'one after the other'}): as1 {jwks['as1']}, "
          f"as2 {jwks['as2']}; in the database {key_rows}")
    expected = args.rate * elapsed
    check(load_total >= 0.9 * expected,
          f"the load ran: {load_total} requests in {elapsed:.0f} s, {100 * load_total / expected:.0f} % of "
          f"{args.rate:g}/s (at least 90 %)")
    kinds = ["authorize", "login", "consent", "token_code", "token_refresh", "introspect", "revoke",
             "mcp_create_note", "mcp_list_notes", "mcp_get_profile"]
    missing = [k for k in kinds if stats.ok[k] == 0]
    check(not missing, "every kind of request succeeded at least once" + (f" (none: {missing})" if missing else ""))
    signed_in = sum(1 for u in users if u.grants)
    check(signed_in == len(users), f"every user signed in through the forms: {signed_in} of {len(users)}")
    for pair, kinds_of in ((("as1", "as2"), ("authorize", "authorize_resume", "login", "consent", "token_code",
                                              "token_refresh", "introspect", "revoke", "introspect_revoked")),
                           (("rs1", "rs2"), ("mcp_create_note", "mcp_list_notes", "mcp_get_profile",
                                              "mcp_revoked_token"))):
        shares = {i: sum(c for (k, j), c in stats.by_instance.items() if j == i and k in kinds_of) for i in pair}
        served = {i: metric_sum(metrics_end[i], "http_requests_total") - metric_sum(metrics_start[i], "http_requests_total")
                  for i in pair}
        total = sum(shares.values()) or 1
        check(all(s >= 0.3 * total for s in shares.values()) and all(v >= 0.3 * total for v in served.values()),
              f"both instances carried the load: sent {shares}, served by their own count {served}")
    err_total = sum(load_errors.values())
    check(err_total == 0, f"no request failed during the load: {err_total} of {load_total}")
    check(not final_listing_bad, "the final listing through both resource servers worked"
          + (f": {final_listing_bad[:3]}" if final_listing_bad else ""))
    check(not stats.violations, f"no wrong answer during the run (state/iss, token claims, introspection, "
          f"profile, read-your-writes across instances, revoked tokens refused): {len(stats.violations)}")
    for v in stats.violations[:15]:
        print(f"    {v[:400]}")
    check(notes_recorded > 0 and not note_problems,
          f"every note created is in the database for its user, unchanged, and nothing else is: "
          f"{notes_recorded} created, {len(note_problems)} problems")
    for v in note_problems[:10]:
        print(f"    {v}")
    check(final_listing.get("rs1", 0) == len(users) and final_listing.get("rs2", 0) == len(users),
          f"each user's list_secure_notes through both instances after the run matched: {dict(final_listing)}")
    check(exchanges > 0 and n_revoked > 0 and not grant_problems,
          f"the grants in the database are one per code exchange, revoked exactly where the generator "
          f"revoked: {exchanges} exchanges, {len(grant_rows)} grants, {n_revoked} revoked, "
          f"{len(grant_problems)} problems")
    for v in grant_problems[:10]:
        print(f"    {v}")
    m_codes = sum(metric_sum(metrics_end[i], "tokens_issued_total", 'grant_type="authorization_code"')
                  - metric_sum(metrics_start[i], "tokens_issued_total", 'grant_type="authorization_code"')
                  for i in ("as1", "as2"))
    m_refresh = sum(metric_sum(metrics_end[i], "tokens_issued_total", 'grant_type="refresh_token"')
                    - metric_sum(metrics_start[i], "tokens_issued_total", 'grant_type="refresh_token"')
                    for i in ("as1", "as2"))
    m_logins = sum(metric_sum(metrics_end[i], "logins_total") - metric_sum(metrics_start[i], "logins_total")
                   for i in ("as1", "as2"))
    def seen(kind):  # (answered with success, attempted) during the load
        n = load_counts.get(kind, 0)
        return n - sum(c for (k, _), c in load_errors.items() if k == kind), n

    (codes_ok, codes_all), (refresh_ok, refresh_all), (logins_ok, logins_all) = \
        seen("token_code"), seen("token_refresh"), seen("login")
    check(codes_ok <= m_codes <= codes_all and refresh_ok <= m_refresh <= refresh_all
          and logins_ok <= m_logins <= logins_all,
          f"the authorization servers counted what the generator saw during the load (their metrics / "
          f"successes seen): code exchanges {m_codes:.0f}/{codes_ok}, refreshes {m_refresh:.0f}/{refresh_ok}, "
          f"sign-ins {m_logins:.0f}/{logins_ok}")
    check(usage_expected > 0 and not usage_problems,
          f"the request counts of get_api_usage in the database, read after a clean shutdown, are the "
          f"calls made: {usage_total} counted, {usage_expected} successful calls, {len(usage_problems)} "
          f"users' tools differ")
    for v in usage_problems[:5]:
        print(f"    {v}")
    check(all(alive_after_load.values()) and all(alive_end.values()),
          f"all four servers were still running at the end: {alive_end}")
    panics = {n: len(f["panics"]) for n, f in log_findings.items()}
    errors = {n: len(f["errors"]) for n, f in log_findings.items()}
    check(not any(panics.values()) and not any(errors.values()),
          f"no panic and no ERROR line in the servers' logs: panics {panics}, errors {errors}")
    passed = all(checks)
    print()
    print(f"{'PASS' if passed else 'FAIL'}: soak, {sum(checks)} of {len(checks)} checks passed "
          f"({time.time() - t_begin:.0f} s in all)")
    if passed and not args.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"servers' logs: {work}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
