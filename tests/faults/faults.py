#!/usr/bin/env python3
"""Fault injection for the authorization server (AS) and the MCP resource server (RS): the
servers are started as real processes and hurt while a load generator drives them.

  1. PostgreSQL stopped (`pg_ctl stop -m fast`) for 8 s and started again under load, on a
     private cluster, with mcp-stack on it: no 500; while it is down the database-backed
     endpoints answer 503 with Retry-After within 7 s (the pool waits 5 s) and discovery and
     JWKS answer 200; requests succeed again within 15 s of its return, with nothing
     restarted; every token acknowledged with a 200 is still active, one grant per code
     exchange that got 200, no grant without its access token.
  2. The AS killed (SIGKILL) while the RS (a separate process) is under load: a token the RS
     has cached keeps working throughout; a token it has never seen gets 503 + Retry-After
     while the AS is down, and works within 10 s of the AS starting again (same port, same
     database).
  3. SIGKILL in the middle of concurrent code exchanges and refreshes (8 threads, three kills
     at random moments), on SQLite and on PostgreSQL; after each restart on the same data:
     no access or refresh token whose grant is missing, no code consumed without its grant,
     no grant without an access token, every acknowledged token's row present and every token
     acknowledged before a kill still active.
  4. SQLite under 16 concurrent writers (code exchanges, refreshes, registrations,
     revocations) for 20 s: no 500, "database is locked" / "busy" (SQLITE_BUSY) in no answer
     and no log line; the error classes seen are listed.

Each check prints the figures it decided on and a PASS or FAIL line; the exit status is 1 when
any check failed. About 2-3 minutes on 2 cores with debug builds. Not part of scripts/test.

  scripts/faults                      # every check (the wrapper checks the binaries first)
  scripts/faults --check 2 4          # some of them
  scripts/faults --outage 8 --keep    # outage length; keep the work directory and logs

Binaries: FAULTS_BIN (the wrapper's default: $CARGO_TARGET_DIR/debug or target/debug), holding
mcp-stack, authz-server and resource-server; PostgreSQL server binaries in FAULTS_PG_BIN
(default /usr/lib/postgresql/15/bin) and psql on PATH. The private cluster runs as the
postgres user when this runs as root, on a port of its own; it is removed at the end. Python
standard library only.
"""
import argparse
import base64
import collections
import concurrent.futures
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("FAULTS_BIN") or os.path.join(ROOT, "target", "debug")
PG_BIN = os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin")
REDIRECT = "http://127.0.0.1:8976/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
DEMO_CLIENT = "mcp-test-client"
PV = "2025-11-25"
RS_ID = "faults-rs"
RS_SECRET = "faults-rs-" + secrets.token_hex(16)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# "busy" as a word: random ids and tokens (base64url) contain it by chance.
LOCKED = re.compile(rb"database is locked|sqlite_busy|(?<![A-Za-z0-9_-])busy(?![A-Za-z0-9_-])", re.I)
RANDOM_FIELDS = ("access_token", "refresh_token", "client_id", "client_secret",
                 "registration_access_token")


def says_locked(body):
    """Whether an answer says the database is locked or busy (random values left out)."""
    try:
        j = json.loads(body)
    except ValueError:
        j = None
    if isinstance(j, dict):
        body = json.dumps({k: v for k, v in j.items() if k not in RANDOM_FIELDS}).encode()
    return bool(LOCKED.search(body))
WORK = None
T0 = time.monotonic()


def now():
    return time.monotonic()


def log(msg):
    print(f"[{now() - T0:6.1f}s] {msg}", flush=True)


def fig(name, value):
    print(f"      {name}: {value}", flush=True)


# ----------------------------------------------------------------------------- HTTP
class Resp:
    __slots__ = ("status", "headers", "body", "t0", "t1", "err")

    def __init__(self, status, headers, body, t0, t1, err):
        self.status, self.headers, self.body = status, headers, body
        self.t0, self.t1, self.err = t0, t1, err

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    def error_code(self):
        j = self.json()
        return j.get("error") if isinstance(j, dict) else None


def req(method, url, body=None, headers=None, timeout=30):
    """One request on a connection of its own (nothing is retried behind the caller's back:
    a code or a refresh token sent twice is a replay)."""
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    t0 = now()
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data, t0, now(), None)
    except (OSError, http.client.HTTPException) as e:
        return Resp(None, {}, b"", t0, now(), type(e).__name__)
    finally:
        c.close()


def form(d):
    return urllib.parse.urlencode(d)


def basic(cid, secret):
    raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def jwt_claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def digest(value):
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc=None, timeout=60, want=200):
    end = now() + timeout
    while now() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.returncode}) before {url} answered:\n"
                               + tail(proc.log_path))
        r = req("GET", url, timeout=5)
        if r.status == want:
            return now()
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer {want} within {timeout}s")


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Driver:
    """The OAuth requests of the load, for one AS, resource and public client."""

    def __init__(self, issuer, resource, client_id, machine=None):
        self.issuer, self.resource, self.client_id = issuer, resource, client_id
        self.machine = machine and basic(*machine)
        self.rs_auth = basic(RS_ID, RS_SECRET)

    def authorize(self):
        q = form({"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
                  "code_challenge": CHALLENGE, "code_challenge_method": "S256",
                  "scope": "mcp:read mcp:write", "resource": self.resource, "state": "faults"})
        r = req("GET", f"{self.issuer}/authorize?{q}")
        loc = r.headers.get("location", "")
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).get("code", [None])[0]
        return r, (code if r.status in (302, 303) else None)

    def exchange(self, code):
        return req("POST", f"{self.issuer}/token", form({
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": self.client_id, "code_verifier": VERIFIER, "resource": self.resource}), FORM)

    def refresh(self, token):
        return req("POST", f"{self.issuer}/token", form({
            "grant_type": "refresh_token", "refresh_token": token, "client_id": self.client_id}), FORM)

    def client_credentials(self):
        return req("POST", f"{self.issuer}/token",
                   form({"grant_type": "client_credentials", "resource": self.resource}),
                   {**FORM, "Authorization": self.machine})

    def introspect(self, token):
        return req("POST", f"{self.issuer}/introspect", form({"token": token}),
                   {**FORM, "Authorization": self.rs_auth})

    def register(self):
        return req("POST", f"{self.issuer}/register", json.dumps({
            "client_name": "faults", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}),
            {"Content-Type": "application/json"})

    def revoke(self, token, hint):
        return req("POST", f"{self.issuer}/revoke", form({
            "token": token, "token_type_hint": hint, "client_id": self.client_id}), FORM)

    def user_tokens(self):
        r, code = self.authorize()
        if not code:
            raise RuntimeError(f"/authorize gave no code: {r.status} {r.err} {r.body[:200]!r}")
        r = self.exchange(code)
        if r.status != 200:
            raise RuntimeError(f"code exchange: {r.status} {r.err} {r.body[:200]!r}")
        return r.json()


def mcp_post(url, token, body, sid=None):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": PV, "Authorization": f"Bearer {token}"}
    if sid:
        h["Mcp-Session-Id"] = sid
    return req("POST", url, json.dumps(body), h, timeout=20)


def mcp_initialize(url, token):
    return mcp_post(url, token, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PV, "capabilities": {}, "clientInfo": {"name": "faults", "version": "1"}}})


def mcp_session(url, token):
    r = mcp_initialize(url, token)
    if r.status != 200 or "mcp-session-id" not in r.headers:
        raise RuntimeError(f"initialize: {r.status} {r.err} {r.body[:300]!r}")
    sid = r.headers["mcp-session-id"]
    mcp_post(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return sid


def rpc_ok(r):
    return r.status == 200 and b'"result"' in r.body and b'"isError":true' not in r.body


# ----------------------------------------------------------------------------- records
def summary(body):
    """A body for a report: an HTML page by its title and heading."""
    if body.lstrip()[:15].lower().startswith(b"<!doctype html"):
        title = re.search(rb"<title>(.*?)</title>", body, re.S)
        h = re.search(rb"<p[^>]*>(.*?)</p>", body, re.S)
        return b"HTML page: " + b" / ".join(m.group(1).strip() for m in (title, h) if m)[:250]
    return body[:300]


class Ev:
    __slots__ = ("op", "t0", "t1", "status", "ra", "err", "ok", "code", "locked", "body")

    def __init__(self, op, r, ok):
        self.op, self.t0, self.t1, self.status, self.err, self.ok = op, r.t0, r.t1, r.status, r.err, ok
        self.ra = r.headers.get("retry-after")
        self.code = None if ok else r.error_code()
        self.locked = says_locked(r.body)
        self.body = summary(r.body) if not ok or self.locked else None

    def __repr__(self):
        st = self.status if self.status is not None else self.err
        return (f"{self.op} -> {st}{' Retry-After' if self.ra else ''} after "
                f"{self.t1 - self.t0:.2f}s {self.body!r}")

    def cls(self):
        return f"{self.op}: {self.status if self.status is not None else self.err}" + (
            f" {self.code}" if self.code else "")


class Events(list):
    def add(self, op, r, ok):
        e = Ev(op, r, ok)
        self.append(e)
        return e


class Ack:
    """A token response that arrived with 200."""
    __slots__ = ("kind", "access", "refresh", "t1")

    def __init__(self, kind, body, t1):
        self.kind, self.access, self.refresh, self.t1 = kind, body["access_token"], body.get("refresh_token"), t1


def classes(events):
    return collections.Counter(e.cls() for e in events if not e.ok)


def show_classes(name, events):
    c = classes(events)
    fig(name, ", ".join(f"{k} x{v}" for k, v in c.most_common()) or "none")


def show_examples(name, events, n=3):
    for e in events[:n]:
        fig(name, repr(e))


def introspect_all(driver, acks):
    """Introspects every acknowledged access token: {outcome: count}, examples of the others."""
    outcome, bad = collections.Counter(), []

    def one(a):
        r = driver.introspect(a.access)
        if r.status == 200 and r.json().get("active") is True:
            return "active", None
        what = "inactive" if r.status == 200 else f"status {r.status or r.err}"
        return what, f"{a.kind} token issued at {a.t1 - T0:.1f}s: {what} {r.body[:150]!r}"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for what, example in pool.map(one, acks):
            outcome[what] += 1
            if example and len(bad) < 5:
                bad.append(example)
    return outcome, bad


# ----------------------------------------------------------------------------- processes
class Procs:
    def __init__(self):
        self.live = []

    def start(self, name, argv, env):
        path = os.path.join(WORK, f"{name}.log")
        out = open(path, "ab")
        p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=WORK)
        out.close()
        p.name, p.log_path = name, path
        self.live.append(p)
        return p

    def kill(self, p, sig=signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                pass
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p)


def base_env(rust_log="warn"):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("AUTHZ_") or k.startswith("RS_") or k == "DATABASE_URL")}
    env["RUST_LOG"] = rust_log
    return env


def as_env(as_port, rs_port, db_url, rust_log="warn"):
    env = base_env(rust_log)
    env.update({
        "AUTHZ_BIND": f"127.0.0.1:{as_port}", "AUTHZ_ISSUER": f"http://127.0.0.1:{as_port}",
        "AUTHZ_DATABASE_URL": db_url, "AUTHZ_RESOURCE": f"http://127.0.0.1:{rs_port}/mcp",
        "AUTHZ_RESOURCE_CLIENT_ID": RS_ID, "AUTHZ_RESOURCE_CLIENT_SECRET": RS_SECRET,
        "AUTHZ_RESOURCE_MACHINE_CLIENTS": "true",
        "AUTHZ_HEADLESS_USER": "testuser", "AUTHZ_ALLOW_HEADLESS": "true",
        "AUTHZ_CODE_TTL": "600",
        # All the load comes from 127.0.0.1: the abuse quotas would be what is measured.
        "AUTHZ_REQUESTS_PER_MINUTE_PER_ADDRESS": "0", "AUTHZ_REQUESTS_PER_MINUTE_PER_CLIENT": "0",
        "AUTHZ_REGISTRATIONS_PER_HOUR": "100000",
    })
    return env


def rs_env(env, as_port, rs_port, db_url):
    env = dict(env)
    env.update({
        "RS_BIND": f"127.0.0.1:{rs_port}", "RS_RESOURCE": f"http://127.0.0.1:{rs_port}/mcp",
        "RS_ISSUER": f"http://127.0.0.1:{as_port}", "RS_CLIENT_ID": RS_ID,
        "RS_CLIENT_SECRET": RS_SECRET, "RS_DATABASE_URL": db_url, "RS_ACCEPT_MACHINE_CLIENTS": "true",
    })
    return env


def admin(env, *args):
    out = subprocess.run([os.path.join(BIN, "authz-server"), *args], env=env, cwd=WORK,
                         capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"authz-server {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def machine_client(env):
    out = admin(env, "admin", "client", "add", "--name", "faults machine", "--confidential",
                "--scope", "mcp:read mcp:write")
    return (re.search(r"client_id\W+(\S+)", out).group(1),
            re.search(r"client_secret\W+(\S+)", out).group(1))


def provision(env):
    """A fresh authz-server database: migrated, the headless user, a public client."""
    admin(env, "migrate")
    admin(env, "admin", "user", "add", "testuser", "--password", "testpass")
    out = admin(env, "admin", "client", "add", "--name", "faults public",
                "--redirect-uri", "http://127.0.0.1/callback")
    return re.search(r"client_id\W+(\S+)", out).group(1)


# ----------------------------------------------------------------------------- PostgreSQL
class Pg:
    """A private cluster: its own directory, port and socket; stopped and started at will."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="faults-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.prefix = []
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        self.run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync")
        self.start()

    def run(self, tool, *args, check=True):
        out = subprocess.run(self.prefix + [os.path.join(PG_BIN, tool), *args], cwd=self.dir,
                             capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {out.stdout}{out.stderr}")
        return out

    def start(self):
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "postgres.log"), "-w",
                 "-t", "60", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
                 "start")

    def stop(self, mode="fast"):
        self.run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres"):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", db, "-qAtX", "-v", "ON_ERROR_STOP=1"], input=sql,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout

    def answers(self):
        try:
            self.psql("SELECT 1")
            return True
        except (RuntimeError, subprocess.TimeoutExpired):
            return False

    def destroy(self):
        self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Sql:
    """The AS database, read with psql (PostgreSQL) or python's sqlite3."""

    def __init__(self, pg=None, db=None, path=None):
        self.pg, self.db, self.path = pg, db, path

    def rows(self, query):
        if self.pg:
            return [tuple(line.split("|")) for line in self.pg.psql(query, self.db).splitlines()]
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return [tuple(str(v) for v in row) for row in con.execute(query)]
        finally:
            con.close()

    def scalar(self, query):
        return int(self.rows(query)[0][0])

    def column(self, query):
        return {r[0] for r in self.rows(query)}


INVARIANTS = [
    ("access tokens whose grant is missing",
     "SELECT COUNT(*) FROM access_tokens a WHERE a.grant_id IS NOT NULL "
     "AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = a.grant_id)"),
    ("refresh tokens whose grant is missing",
     "SELECT COUNT(*) FROM refresh_tokens r WHERE NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = r.grant_id)"),
    ("codes consumed without a grant",
     "SELECT COUNT(*) FROM authorization_codes WHERE consumed_at IS NOT NULL AND grant_id IS NULL"),
    ("codes naming a grant that is missing",
     "SELECT COUNT(*) FROM authorization_codes c WHERE c.grant_id IS NOT NULL "
     "AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = c.grant_id)"),
    ("grants without an access token",
     "SELECT COUNT(*) FROM grants g WHERE NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id)"),
]


def check_rows(sql, acks, fails):
    """The SQL invariants, and every acknowledged token's row present."""
    for name, query in INVARIANTS:
        n = sql.scalar(query)
        fig(name, n)
        if n:
            fails.append(f"{n} {name}")
    check_rows_lost(sql, acks, fails)


def check_rows_lost(sql, acks, fails):
    jtis = sql.column("SELECT jti FROM access_tokens")
    hashes = sql.column("SELECT token_hash FROM refresh_tokens")
    user = [a for a in acks if a.kind != "cc"]
    lost_at = sum(jwt_claims(a.access)["jti"] not in jtis for a in user)
    refresh = [a.refresh for a in user if a.refresh]
    lost_rt = sum(digest(t) not in hashes for t in refresh)
    fig("acknowledged user access tokens without their row", f"{lost_at} of {len(user)}")
    fig("acknowledged refresh tokens without their row", f"{lost_rt} of {len(refresh)}")
    if lost_at or lost_rt:
        fails.append(f"acknowledged tokens lost from the database: {lost_at} access, {lost_rt} refresh")


def check_active(driver, acks, fails):
    outcome, bad = introspect_all(driver, acks)
    fig("acknowledged access tokens introspected", f"{len(acks)}: " + ", ".join(
        f"{k} {v}" for k, v in outcome.most_common()))
    for b in bad:
        fig("not active", b)
    if outcome["active"] != len(acks):
        fails.append(f"{len(acks) - outcome['active']} acknowledged tokens are not active")


# ----------------------------------------------------------------------------- check 1
DB_OPS = ("authorize", "token code", "token refresh", "token cc", "introspect")


def load_worker(kind, d, ev, acks, stop, seed, pause=0.02):
    """One kind of request, over and over: client_credentials tokens ("cc"), headless code
    flows with exchange ("code"; a few codes are made ahead, so that exchanges are still tried
    while /authorize fails), refreshes of a chain of its own ("refresh"), introspections of
    acknowledged tokens ("introspect")."""
    rng = random.Random(seed)
    chain, stock = None, []

    def code_flow():
        r, code = d.authorize()
        if ev.add("authorize", r, code is not None).ok:
            stock.append(code)
        if stock:
            r = d.exchange(stock.pop(0))
            # A code that got no 200 is not sent again: a second redemption is a replay.
            if ev.add("token code", r, r.status == 200).ok:
                a = Ack("code", r.json(), r.t1)
                acks.append(a)
                return a.refresh
        return None

    while kind == "code" and len(stock) < 3 and not stop.is_set():
        r, code = d.authorize()
        if ev.add("authorize", r, code is not None).ok:
            stock.append(code)
    while not stop.is_set():
        if kind == "cc":
            r = d.client_credentials()
            if ev.add("token cc", r, r.status == 200).ok:
                acks.append(Ack("cc", r.json(), r.t1))
        elif kind == "code" or (kind == "refresh" and not chain):
            chain = code_flow() or chain
        elif kind == "refresh":
            r = d.refresh(chain)
            if ev.add("token refresh", r, r.status == 200).ok:
                a = Ack("refresh", r.json(), r.t1)
                acks.append(a)
                chain = a.refresh
            elif r.status != 503:
                chain = None  # refused: start a new chain; a 503 is tried again later
        elif kind == "introspect" and acks:
            a = rng.choice(acks[-300:])
            r = d.introspect(a.access)
            ev.add("introspect", r, r.status == 200 and r.json().get("active") is True)
        time.sleep(pause)


def meta_worker(d, ev, stop):
    while not stop.is_set():
        r = req("GET", f"{d.issuer}/.well-known/oauth-authorization-server")
        ev.add("discovery", r, r.status == 200)
        r = req("GET", f"{d.issuer}/jwks.json")
        ev.add("jwks", r, r.status == 200)
        time.sleep(0.05)


def check_pg_outage(procs, pg, outage):
    fails = []
    pg.psql("CREATE DATABASE c1_as")
    pg.psql("CREATE DATABASE c1_rs")
    as_port, rs_port = free_port(), free_port()
    env = rs_env(as_env(as_port, rs_port, pg.url("c1_as")), as_port, rs_port, pg.url("c1_rs"))
    stack = procs.start("c1-mcp-stack", [os.path.join(BIN, "mcp-stack"), "--data-dir",
                                         os.path.join(WORK, "c1-data")], env)
    issuer = f"http://127.0.0.1:{as_port}"
    wait_http(f"{issuer}/.well-known/oauth-authorization-server", stack)
    wait_http(f"http://127.0.0.1:{rs_port}/.well-known/oauth-protected-resource/mcp", stack)
    d = Driver(issuer, f"http://127.0.0.1:{rs_port}/mcp", DEMO_CLIENT, machine_client(env))
    ev, acks, stop = Events(), [], threading.Event()
    kinds = ["code", "code", "refresh", "refresh", "cc", "introspect", "introspect"]
    threads = [threading.Thread(target=load_worker, args=(k, d, ev, acks, stop, i), daemon=True)
               for i, k in enumerate(kinds)]
    threads.append(threading.Thread(target=meta_worker, args=(d, ev, stop), daemon=True))
    log(f"check 1: load running ({len(kinds)} workers: {', '.join(kinds)}; a discovery/JWKS prober)")
    for t in threads:
        t.start()
    time.sleep(6)
    t_stop0 = now()
    pg.stop("fast")
    t_down = now()
    log(f"check 1: PostgreSQL stopped (pg_ctl stop -m fast took {t_down - t_stop0:.2f}s)")
    time.sleep(outage / 2)
    pg_answered = pg.answers()
    time.sleep(max(0.0, outage - (now() - t_down)))
    t_up0 = now()
    pg.start()
    t_up = now()
    log(f"check 1: PostgreSQL started again after {t_up0 - t_down:.1f}s down "
        f"(pg_ctl start took {t_up - t_up0:.2f}s)")
    time.sleep(21)
    stop.set()
    for t in threads:
        t.join()
    log(f"check 1: load stopped; {len(ev)} requests")

    fig("PostgreSQL down", f"{t_up0 - t_down:.1f}s (answered a query meanwhile: {pg_answered})")
    if pg_answered or t_up0 - t_down < outage - 0.5:
        fails.append("the outage did not happen as planned")
    before = [e for e in ev if e.t1 < t_stop0]
    per_op = collections.Counter(e.op for e in before if e.ok)
    fig("successes before the outage", dict(per_op))
    for op in DB_OPS + ("discovery", "jwks"):
        if per_op[op] < 5:
            fails.append(f"the load did not run before the outage: {per_op[op]} successful {op}")

    e500 = [e for e in ev if e.status == 500]
    fig("answers 500 (whole run)", len(e500))
    show_examples("500", e500)
    if e500:
        fails.append(f"{len(e500)} answers 500: " + ", ".join(
            f"{k} x{v}" for k, v in classes(e500).most_common()))
    conn = [e for e in ev if e.err]
    fig("connection errors (whole run)", len(conn))
    if conn:
        fails.append(f"{len(conn)} connection errors")
        show_examples("connection error", conn)

    # Every database-backed request the outage touched: answered while PostgreSQL was down,
    # or started then (and perhaps answered after its return).
    down = [e for e in ev if e.op in DB_OPS and e.t1 >= t_down and e.t0 < t_up0]
    n503 = [e for e in down if e.status == 503 and e.ra]
    n503_bare = [e for e in down if e.status == 503 and not e.ra]
    other = [e for e in down if not e.ok and e.status != 503]
    fig("database-backed requests the outage touched", f"{len(down)} "
        f"({sum(e.t1 < t_up0 for e in down)} answered while it was down)")
    for op in DB_OPS:
        mine = [e for e in down if e.op == op]
        fig(f"  {op}", f"{len(mine)}: 503+Retry-After {sum(e.status == 503 and bool(e.ra) for e in mine)}, "
            f"succeeded while down (from memory) {sum(e.ok and e.t1 < t_up0 for e in mine)}"
            + (f" (the last {max(e.t1 for e in mine if e.ok and e.t1 < t_up0) - t_down:.1f}s into it)"
               if any(e.ok and e.t1 < t_up0 for e in mine) else "") + ", "
            f"waited for its return then succeeded {sum(e.ok and e.t1 >= t_up0 for e in mine)}, "
            f"other {sum(not e.ok and not (e.status == 503 and bool(e.ra)) for e in mine)}")
    fig("  503 with Retry-After", f"{len(n503)} (Retry-After values: {sorted({e.ra for e in n503})}; "
        f"answered after {min((e.t1 - e.t0 for e in n503), default=0):.2f}-"
        f"{max((e.t1 - e.t0 for e in n503), default=0):.2f}s)")
    fig("  503 without Retry-After", len(n503_bare))
    show_classes("  classes of the failures", [e for e in down if not e.ok])
    show_examples("  other failure", other)
    if not n503:
        fails.append("no 503 with Retry-After while PostgreSQL was down")
    if n503_bare:
        fails.append(f"{len(n503_bare)} answers 503 without Retry-After")
    if other:
        fails.append(f"{len(other)} answers other than success or 503 while PostgreSQL was down: "
                     + ", ".join(f"{k} x{v}" for k, v in classes(other).most_common()))

    around = [e for e in ev if e.t1 >= t_stop0 and e.t0 <= t_up]
    slowest = max(around, key=lambda e: e.t1 - e.t0)
    overall = max(ev, key=lambda e: e.t1 - e.t0)
    fig("slowest request around the outage", f"{slowest.t1 - slowest.t0:.2f}s ({slowest.op}, "
        f"{slowest.status or slowest.err})")
    fig("slowest request of the run", f"{overall.t1 - overall.t0:.2f}s ({overall.op})")
    slow = [e for e in ev if e.t1 - e.t0 > 7]
    if slow:
        fails.append(f"{len(slow)} requests took longer than 7 s: "
                     + ", ".join(f"{k} x{v}" for k, v in
                                 collections.Counter(e.op for e in slow).most_common()))

    meta = [e for e in ev if e.op in ("discovery", "jwks") and t_stop0 <= e.t0 < t_up]
    meta_bad = [e for e in meta if not e.ok]
    fig("discovery and JWKS during the outage", f"{len(meta)} requests, {len(meta) - len(meta_bad)} "
        f"answered 200")
    if len(meta) < 10 or meta_bad:
        fails.append(f"discovery/JWKS during the outage: {len(meta_bad)} of {len(meta)} not 200")

    for op in ("authorize", "token code", "token refresh", "token cc", "introspect"):
        first = min((e.t1 for e in ev if e.op == op and e.ok and e.t0 >= t_up0), default=None)
        after = "never" if first is None else f"{first - t_up:.2f}s"
        fig(f"first {op} success after PostgreSQL was back", after)
        if first is None or first - t_up > 15:
            fails.append(f"{op} did not succeed within 15 s of PostgreSQL's return ({after})")
    late = [e for e in ev if e.op in DB_OPS and e.t0 >= t_up + 15]
    late_bad = [e for e in late if not e.ok]
    fig("requests started 15 s or more after its return", f"{len(late)}, failed {len(late_bad)}")
    show_examples("late failure", late_bad)
    if len(late) < 20 or late_bad:
        fails.append(f"after recovery: {len(late_bad)} of {len(late)} requests failed")
    alive = stack.poll() is None
    fig("mcp-stack still the same running process", alive)
    if not alive:
        fails.append("mcp-stack exited")

    fig("tokens acknowledged with 200", dict(collections.Counter(a.kind for a in acks)))
    check_active(d, acks, fails)
    sql = Sql(pg, "c1_as")
    grants = sql.scalar("SELECT COUNT(*) FROM grants")
    code_ok = sum(1 for e in ev if e.op == "token code" and e.ok)
    fig("grant rows / code exchanges answered 200", f"{grants} / {code_ok}")
    if grants != code_ok:
        fails.append(f"{grants} grant rows for {code_ok} code exchanges answered 200")
    check_rows(sql, acks, fails)
    procs.stop(stack)
    return fails


# ----------------------------------------------------------------------------- check 2
def check_as_kill(procs, outage):
    fails = []
    data = os.path.join(WORK, "c2")
    os.makedirs(data)
    as_port, rs_port = free_port(), free_port()
    aenv = as_env(as_port, rs_port, f"sqlite://{data}/authz.db?mode=rwc")
    renv = rs_env(base_env(), as_port, rs_port, f"sqlite://{data}/resource.db?mode=rwc")
    client = provision(aenv)
    issuer, mcp = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}/mcp"
    asp = procs.start("c2-authz-server", [os.path.join(BIN, "authz-server"), "serve"], aenv)
    wait_http(f"{issuer}/.well-known/oauth-authorization-server", asp)
    rsp = procs.start("c2-resource-server", [os.path.join(BIN, "resource-server")], renv)
    wait_http(f"http://127.0.0.1:{rs_port}/readyz", rsp)
    d = Driver(issuer, mcp, client)
    token_a = d.user_tokens()["access_token"]
    token_b = d.user_tokens()["access_token"]
    # Token A is shown to the RS (one session per load thread): its introspection is cached.
    sids = [mcp_session(mcp, token_a) for _ in range(3)]
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_user_profile", "arguments": {}}}
    r = mcp_post(mcp, token_a, call, sids[0])
    if not rpc_ok(r):
        raise RuntimeError(f"tools/call with token A before the fault: {r.status} {r.body[:300]!r}")
    ev, stop_a, stop_b = Events(), threading.Event(), threading.Event()

    def load_a(sid):
        while not stop_a.is_set():
            r = mcp_post(mcp, token_a, call, sid)
            ev.add("A", r, rpc_ok(r))
            time.sleep(0.02)

    def probe_b():
        while not stop_b.is_set():
            r = mcp_initialize(mcp, token_b)
            ev.add("B", r, r.status == 200)
            if r.status == 200:
                return
            time.sleep(0.25)

    threads = [threading.Thread(target=load_a, args=(s,), daemon=True) for s in sids]
    for t in threads:
        t.start()
    time.sleep(3)
    t_kill = now()
    procs.kill(asp)
    t_dead = now()
    refused = req("GET", f"{issuer}/.well-known/oauth-authorization-server", timeout=3)
    log(f"check 2: authz-server killed with SIGKILL (discovery now: {refused.status or refused.err})")
    tb = threading.Thread(target=probe_b, daemon=True)
    tb.start()
    time.sleep(outage)
    t_restart = now()
    asp = procs.start("c2-authz-server", [os.path.join(BIN, "authz-server"), "serve"], aenv)
    t_ready = wait_http(f"{issuer}/.well-known/oauth-authorization-server", asp)
    log(f"check 2: authz-server started again, answering after {t_ready - t_restart:.2f}s")
    tb.join(20)
    stop_b.set()
    tb.join()
    time.sleep(2)
    stop_a.set()
    for t in threads:
        t.join()

    fig("AS down", f"{t_restart - t_dead:.1f}s (discovery while down: {refused.status or refused.err})")
    if refused.status is not None:
        fails.append("the AS still answered after SIGKILL")
    a = [e for e in ev if e.op == "A"]
    a_bad = [e for e in a if not e.ok]
    a_out = [e for e in a if t_dead <= e.t0 and e.t1 < t_restart]
    a_after = [e for e in a if e.t0 >= t_ready]
    fig("cached token A: requests / failures (whole run)", f"{len(a)} / {len(a_bad)}")
    fig("cached token A: successes while the AS was down", sum(e.ok for e in a_out))
    fig("cached token A: successes after the restart", sum(e.ok for e in a_after))
    show_classes("cached token A: failure classes", a)
    show_examples("cached token A failure", a_bad)
    if a_bad:
        fails.append(f"{len(a_bad)} requests with the cached token failed")
    if sum(e.ok for e in a_out) < 10:
        fails.append("too few successes with the cached token during the outage")
    if not any(e.ok for e in a_after):
        fails.append("the cached token did not work after the restart")
    b = [e for e in ev if e.op == "B"]
    b_out = [e for e in b if e.t1 < t_restart]
    b_503 = [e for e in b_out if e.status == 503 and e.ra]
    fig("new token B while the AS was down", f"{len(b_out)} requests, {len(b_503)} answered 503 with "
        f"Retry-After")
    fig("new token B while down: Retry-After values", sorted({e.ra for e in b_503}))
    show_classes("new token B while down: answers other than 503 with Retry-After",
                 [e for e in b_out if not (e.status == 503 and e.ra)])
    if len(b_out) < 3 or len(b_503) != len(b_out):
        fails.append(f"token B during the outage: {len(b_503)} of {len(b_out)} answered 503 with Retry-After"
                     + (": " + ", ".join(repr(e) for e in b_out if not (e.status == 503 and e.ra))[:400]
                        if len(b_503) != len(b_out) else ""))
    first = min((e.t1 for e in b if e.ok), default=None)
    after = "never" if first is None else f"{first - t_restart:.2f}s after the restart was launched, " \
                                          f"{first - t_ready:.2f}s after the AS answered"
    fig("new token B accepted", after)
    if first is None or first - t_restart > 10:
        fails.append(f"token B was not accepted within 10 s of the restart ({after})")
    procs.stop_all()
    return fails


# ----------------------------------------------------------------------------- check 3
def check_kill_exchanges(procs, backend, pg, rounds=3):
    """`rounds` times: load, SIGKILL at a random moment, restart on the same data, check."""
    fails = []
    data = os.path.join(WORK, f"c3-{backend}")
    os.makedirs(data)
    as_port, rs_port = free_port(), free_port()
    if backend == "postgres":
        pg.psql("CREATE DATABASE c3_as")
        url, sql = pg.url("c3_as"), Sql(pg, "c3_as")
    else:
        path = os.path.join(data, "authz.db")
        url, sql = f"sqlite://{path}?mode=rwc", Sql(path=path)
    env = as_env(as_port, rs_port, url)
    client = provision(env)
    issuer = f"http://127.0.0.1:{as_port}"
    argv = [os.path.join(BIN, "authz-server"), "serve"]
    asp = procs.start(f"c3-{backend}-authz-server", argv, env)
    wait_http(f"{issuer}/.well-known/oauth-authorization-server", asp)
    d = Driver(issuer, f"http://127.0.0.1:{rs_port}/mcp", client)
    acks, code_ok, code_inflight = [], 0, 0
    rng = random.Random()

    def worker(i, ev, stop):
        chain, n = None, i
        while not stop.is_set():
            n += 1
            if chain and n % 2:
                r = d.refresh(chain)
                if ev.add("token refresh", r, r.status == 200).ok:
                    a = Ack("refresh", r.json(), r.t1)
                    acks.append(a)
                    chain = a.refresh
                else:
                    chain = None
            else:
                r, code = d.authorize()
                ev.add("authorize", r, code is not None)
                if code:
                    r = d.exchange(code)
                    if ev.add("token code", r, r.status == 200).ok:
                        a = Ack("code", r.json(), r.t1)
                        acks.append(a)
                        chain = a.refresh

    for rnd in range(1, rounds + 1):
        ev, stop = Events(), threading.Event()
        threads = [threading.Thread(target=worker, args=(i, ev, stop), daemon=True) for i in range(8)]
        t_load, kill_after = now(), rng.uniform(2.5, 5.0)
        for t in threads:
            t.start()
        while now() - t_load < 20:
            ok = collections.Counter(e.op for e in ev if e.ok)
            if now() - t_load >= kill_after and ok["token code"] >= 20 and ok["token refresh"] >= 20:
                break
            time.sleep(0.05)
        t_kill = now()
        procs.kill(asp)
        stop.set()
        for t in threads:
            t.join()
        # Any 200 that arrived is acknowledged, even one that crossed the kill; the requests
        # the kill cut off got no answer at all.
        ok = collections.Counter(e.op for e in ev if e.ok)
        cut = [e for e in ev if e.err and e.t1 >= t_kill]
        failed = [e for e in ev if not e.ok and e not in cut]
        # Refused connections came after the process was gone: not in flight at the kill.
        inflight = [e for e in cut if e.op.startswith("token") and e.t0 < t_kill
                    and e.err != "ConnectionRefusedError"]
        code_ok += ok["token code"]
        code_inflight += sum(e.op == "token code" for e in inflight)
        log(f"check 3 ({backend}) round {rnd}/{rounds}: authz-server killed with SIGKILL after "
            f"{t_kill - t_load:.1f}s of load (8 threads)")
        fig("answered 200 (acknowledged)", dict(ok))
        fig("failures other than the requests the kill cut off", len(failed))
        show_classes("their classes", failed)
        show_examples("failure", failed)
        fig("token requests cut off by the kill (no answer)", f"{len(inflight)} "
            f"({dict(collections.Counter(e.op for e in inflight))}; "
            f"{dict(collections.Counter(e.err for e in inflight))}; refused after it: "
            f"{sum(e.err == 'ConnectionRefusedError' for e in cut)})")
        if ok["token code"] < 20 or ok["token refresh"] < 20:
            fails.append(f"round {rnd}: the load did not run: too few exchanges before the kill")
        if not inflight:
            fails.append(f"round {rnd}: no token request was in flight at the kill")
        if failed:
            fails.append(f"round {rnd}: {len(failed)} requests failed besides those the kill cut off")

        t_restart = now()
        asp = procs.start(f"c3-{backend}-authz-server", argv, env)
        t_ready = wait_http(f"{issuer}/.well-known/oauth-authorization-server", asp)
        fig("restart on the same data, answering after", f"{t_ready - t_restart:.2f}s")
        n = len(fails)
        check_rows(sql, acks, fails)
        grants = sql.scalar("SELECT COUNT(*) FROM grants")
        fig("grant rows / code exchanges answered 200 / code exchanges cut off (all rounds so far)",
            f"{grants} / {code_ok} / {code_inflight}")
        if not code_ok <= grants <= code_ok + code_inflight:
            fails.append(f"{grants} grant rows for {code_ok} acknowledged code exchanges "
                         f"and {code_inflight} in flight")
        check_active(d, acks, fails)
        fails[n:] = [f"round {rnd}: {f}" for f in fails[n:]]
    procs.stop_all()
    return fails


# ----------------------------------------------------------------------------- check 4
def check_sqlite_writers(procs, seconds=20, nthreads=16):
    fails = []
    data = os.path.join(WORK, "c4-data")
    as_port, rs_port = free_port(), free_port()
    env = rs_env(as_env(as_port, rs_port, f"sqlite://{data}/authz.db?mode=rwc", rust_log="info"),
                 as_port, rs_port, f"sqlite://{data}/resource.db?mode=rwc")
    stack = procs.start("c4-mcp-stack", [os.path.join(BIN, "mcp-stack"), "--data-dir", data], env)
    issuer = f"http://127.0.0.1:{as_port}"
    wait_http(f"{issuer}/.well-known/oauth-authorization-server", stack)
    d = Driver(issuer, f"http://127.0.0.1:{rs_port}/mcp", DEMO_CLIENT)
    ev, stop = Events(), threading.Event()

    def worker(i):
        chain, step = None, 0
        while not stop.is_set():
            kind = ("code", "refresh", "register", "revoke access", "refresh", "revoke refresh")[step % 6]
            step += 1
            if kind == "code" or chain is None:
                r, code = d.authorize()
                ev.add("authorize", r, code is not None)
                if code:
                    r = d.exchange(code)
                    chain = r.json() if ev.add("token code", r, r.status == 200).ok else None
            elif kind == "refresh":
                r = d.refresh(chain["refresh_token"])
                chain = r.json() if ev.add("token refresh", r, r.status == 200).ok else None
            elif kind == "register":
                r = d.register()
                ev.add("register", r, r.status == 201)
            elif kind == "revoke access":
                r = d.revoke(chain["access_token"], "access_token")
                ev.add("revoke", r, r.status == 200)
            else:
                r = d.revoke(chain["refresh_token"], "refresh_token")
                ev.add("revoke", r, r.status == 200)
                chain = None

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    t_load = now()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    took = now() - t_load
    log(f"check 4: {nthreads} writers for {took:.1f}s, {len(ev)} requests")
    per_op = collections.Counter(e.op for e in ev)
    ok = collections.Counter(e.op for e in ev if e.ok)
    for op in ("authorize", "token code", "token refresh", "register", "revoke"):
        fig(op, f"{per_op[op]} requests, {ok[op]} succeeded ({ok[op] / took:.0f}/s)")
        if ok[op] < 20:
            fails.append(f"the load did not run: {ok[op]} successful {op}")
    points = sorted([(e.t0, 1) for e in ev] + [(e.t1, -1) for e in ev])
    inflight, peak, area = 0, 0, 0.0
    for (t, step), (t_next, _) in zip(points, points[1:] + [points[-1]]):
        inflight += step
        peak = max(peak, inflight)
        area += inflight * (t_next - t)
    fig("requests in flight at once", f"at most {peak}, on average {area / took:.1f}")
    if peak < nthreads // 2:
        fails.append(f"the writers were not concurrent: at most {peak} requests in flight")
    show_classes("error classes", ev)
    e500 = [e for e in ev if e.status == 500]
    e5xx = [e for e in ev if e.status and e.status > 500]
    fig("answers 500", len(e500))
    fig("other 5xx answers", len(e5xx))
    show_examples("500", e500)
    show_examples("5xx", e5xx)
    if e500:
        fails.append(f"{len(e500)} answers 500")
    slowest = max(ev, key=lambda e: e.t1 - e.t0)
    fig("slowest request", f"{slowest.t1 - slowest.t0:.2f}s ({slowest.op})")
    bodies = [e for e in ev if e.locked]
    fig('answers whose body says "database is locked" or "busy"', len(bodies))
    show_examples("locked", bodies)
    procs.stop(stack)
    with open(stack.log_path, "rb") as f:
        lines = f.read().splitlines()
    hits = [l for l in lines if LOCKED.search(l)]
    levels = collections.Counter(m.group(1) for l in lines
                                 for m in [re.search(rb"\b(ERROR|WARN)\b", l)] if m)
    fig("server log lines", f"{len(lines)} ({dict((k.decode(), v) for k, v in levels.items())})")
    fig('server log lines saying "database is locked" or "busy"', len(hits))
    for l in hits[:3]:
        fig("log", l.decode(errors="replace")[:300])
    if bodies or hits:
        fails.append(f'"database is locked"/"busy" seen: {len(bodies)} answers, {len(hits)} log lines')
    return fails


# ----------------------------------------------------------------------------- main
def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", nargs="+", type=int, choices=[1, 2, 3, 4], default=[1, 2, 3, 4])
    ap.add_argument("--outage", type=float, default=8.0, help="seconds PostgreSQL (check 1) and "
                    "the AS (check 2) stay down")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, SQLite files)")
    args = ap.parse_args()
    for b in ("mcp-stack", "authz-server", "resource-server"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            raise SystemExit(f"{BIN}/{b} not found (set FAULTS_BIN)")
    WORK = tempfile.mkdtemp(prefix="faults-")
    procs, pg, results = Procs(), None, []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    checks = []
    if 1 in args.check:
        checks.append(("1", "PostgreSQL stopped and restarted under load",
                       lambda: check_pg_outage(procs, pg, args.outage)))
    if 2 in args.check:
        checks.append(("2", "AS killed (SIGKILL) and restarted while the RS is under load",
                       lambda: check_as_kill(procs, args.outage)))
    if 3 in args.check:
        checks.append(("3a", "SIGKILL in the middle of token exchanges, SQLite",
                       lambda: check_kill_exchanges(procs, "sqlite", pg)))
        checks.append(("3b", "SIGKILL in the middle of token exchanges, PostgreSQL",
                       lambda: check_kill_exchanges(procs, "postgres", pg)))
    if 4 in args.check:
        checks.append(("4", "SQLite under 16 concurrent writers",
                       lambda: check_sqlite_writers(procs)))
    log(f"binaries {BIN}; work directory {WORK}")
    try:
        if 1 in args.check or 3 in args.check:
            pg = Pg()
            log(f"private PostgreSQL cluster on 127.0.0.1:{pg.port} ({pg.dir})")
        for key, title, run in checks:
            log(f"== check {key}: {title}")
            t = now()
            try:
                fails = run()
            except Exception as e:  # a check that cannot run fails, with why
                traceback.print_exc()
                fails = [f"could not run: {e}"]
            procs.stop_all()
            verdict = "PASS" if not fails else "FAIL"
            print(f"{verdict} check {key}: {title} ({now() - t:.0f}s)"
                  + "".join(f"\n      - {f}" for f in fails), flush=True)
            results.append((key, title, fails))
    finally:
        procs.stop_all()
        if pg:
            pg.destroy()
        if args.keep:
            log(f"kept {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)
    print(f"\nSummary ({now() - T0:.0f}s):")
    for key, title, fails in results:
        print(f"  {'PASS' if not fails else 'FAIL'} {key}: {title}")
    sys.exit(1 if any(f for _, _, f in results) else 0)


if __name__ == "__main__":
    main()
