#!/usr/bin/env python3
"""The project's benchmark; run it with `scripts/bench` (which builds the release binaries
and installs wrk). Starts `mcp-stack` (both servers in one process), a bare axum handler
(`bench-hello`, the ceiling) and an MCP server for the gateway to front, drives each workload
with wrk from another core, and prints req/s, p50, p99, error counts and the ratio to the bare
handler measured in the same round. Medians over rounds.

  scripts/bench                       # SQLite and PostgreSQL (if reachable), 1 and 2 workers
  scripts/bench --db sqlite --workers 1 --rounds 1 --duration 3   # a quick look
  scripts/bench --update-readme       # the README's performance table is this run's output
  scripts/bench --scale               # also: introspection at 10 and at 1,000,000 grants,
                                      # memory with 100,000 cached tokens, start-up time

PostgreSQL: BENCH_PG (default postgres://postgres@127.0.0.1:5432); its databases bench_as and
bench_rs are dropped and created again.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "target", "release"))
LUA = os.path.join(ROOT, "bench", "wrk.lua")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
AS_PORT, RS_PORT, HELLO_PORT, UP_PORT = 7610, 7611, 7601, 7602
ISSUER = f"http://127.0.0.1:{AS_PORT}"
RESOURCE = f"http://127.0.0.1:{RS_PORT}/mcp"
GATEWAY = f"http://127.0.0.1:{RS_PORT}/bench/mcp"
RS_ID, RS_SECRET = "bench-rs", "bench-rs-secret-0123456789abcdef"
GW_ID, GW_SECRET = "bench-gateway", "bench-gateway-secret-0123456789ab"
DEMO_CLIENT, REDIRECT = "mcp-test-client", "http://127.0.0.1:8976/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PV = "2025-11-25"
FORM = "Content-Type: application/x-www-form-urlencoded"
MCP_HEADERS = "Content-Type: application/json|Accept: application/json, text/event-stream"
README_BEGIN = "<!-- performance table: scripts/bench --update-readme -->"
README_END = "<!-- end of performance table -->"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- HTTP helpers
def call(method, url, body=None, headers=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    path = u.path + (f"?{u.query}" if u.query else "")
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def form(d):
    return urllib.parse.urlencode(d)


def basic(cid, secret):
    raw = f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def authorize_url(resource, scope="mcp:read mcp:write"):
    q = form({"response_type": "code", "client_id": DEMO_CLIENT, "redirect_uri": REDIRECT,
              "code_challenge": CHALLENGE, "code_challenge_method": "S256", "scope": scope,
              "resource": resource, "state": "bench"})
    return f"{ISSUER}/authorize?{q}"


def user_token(resource=RESOURCE, scope="mcp:read mcp:write"):
    """A user's tokens through the headless authorization server: code, then exchange."""
    status, hdrs, body = call("GET", authorize_url(resource, scope))
    loc = hdrs.get("location", "")
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).get("code", [None])[0]
    assert code, f"no code from /authorize: {status} {loc} {body[:200]!r}"
    status, _, body = call("POST", f"{ISSUER}/token", form({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": DEMO_CLIENT, "code_verifier": VERIFIER, "resource": resource}),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return json.loads(body)


def mcp(url, token, body, sid=None, pv=PV):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": pv, "Authorization": f"Bearer {token}"}
    if sid:
        h["Mcp-Session-Id"] = sid
    return call("POST", url, json.dumps(body), h)


def session(url, token):
    status, hdrs, body = mcp(url, token, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PV, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    assert status == 200, (status, body)
    sid = hdrs["mcp-session-id"]
    mcp(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return sid


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_http(url, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if call("GET", url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def metric(url, name, labels=""):
    """The sum of a Prometheus counter's samples whose labels contain `labels`."""
    _, _, body = call("GET", url)
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# ------------------------------------------------------------------------- processes
class Procs:
    def __init__(self):
        self.procs = []

    def start(self, argv, env=None, cpus=None, log_name="proc"):
        if cpus:
            argv = ["taskset", "-c", cpus] + argv
        out = open(os.path.join(WORK, f"{log_name}.log"), "ab")
        p = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def psql(sql, db="postgres"):
    subprocess.run(["psql", f"{PG}/{db}", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def stack_env(db, workers, data):
    env = {
        "RUST_LOG": "warn", "TOKIO_WORKER_THREADS": str(workers),
        "AUTHZ_BIND": f"127.0.0.1:{AS_PORT}", "AUTHZ_ISSUER": ISSUER,
        "RS_BIND": f"127.0.0.1:{RS_PORT}", "RS_RESOURCE": RESOURCE,
        "AUTHZ_RESOURCE": RESOURCE, "AUTHZ_RESOURCE_CLIENT_ID": RS_ID,
        "AUTHZ_RESOURCE_CLIENT_SECRET": RS_SECRET, "AUTHZ_RESOURCE_MACHINE_CLIENTS": "true",
        "RS_CLIENT_ID": RS_ID, "RS_CLIENT_SECRET": RS_SECRET, "RS_ACCEPT_MACHINE_CLIENTS": "true",
        "RS_FIXTURES": "true", "RS_CACHE_CAPACITY": "200000",
        "AUTHZ_HEADLESS_USER": "testuser", "AUTHZ_ALLOW_HEADLESS": "true",
        # Codes are made in bulk before the code-exchange workload redeems them.
        "AUTHZ_CODE_TTL": "600",
        # One client from one address is the whole load: the abuse quotas would be the figure.
        "AUTHZ_REQUESTS_PER_MINUTE_PER_ADDRESS": "0", "AUTHZ_REQUESTS_PER_MINUTE_PER_CLIENT": "0",
        "RS_UPSTREAM_NAME": "bench", "RS_UPSTREAM_URL": f"http://127.0.0.1:{UP_PORT}/mcp",
        "RS_UPSTREAM_CLIENT_ID": GW_ID, "RS_UPSTREAM_CLIENT_SECRET": GW_SECRET,
        "RS_UPSTREAM_RULES": "echo=mcp:read",
    }
    if db == "postgres":
        env["AUTHZ_DATABASE_URL"] = f"{PG}/bench_as"
        env["RS_DATABASE_URL"] = f"{PG}/bench_rs"
    else:
        env["AUTHZ_DATABASE_URL"] = f"sqlite://{data}/authz.db?mode=rwc"
        env["RS_DATABASE_URL"] = f"sqlite://{data}/resource.db?mode=rwc"
    return env


def fresh_databases(db, data):
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    if db == "postgres":
        for name in ("bench_as", "bench_rs"):
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            psql(f"CREATE DATABASE {name}")


# ------------------------------------------------------------------------- wrk
def wrk(url, conns, duration, method="GET", body=None, headers="", expect=None, lines=None,
        ids=False, capture=None, capture_kind=None, cpus=None):
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_HEADERS": headers}
    for k, v in (("BENCH_BODY", body), ("BENCH_EXPECT", expect and str(expect)),
                 ("BENCH_LINES", lines), ("BENCH_ID_IN_BODY", ids and "1"),
                 ("BENCH_CAPTURE", capture), ("BENCH_CAPTURE_KIND", capture_kind)):
        if v:
            env[k] = v
        else:
            env.pop(k, None)
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", LUA, url]
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    r = json.loads(line[6:])
    secs = r["duration_us"] / 1e6
    errors = r["wrong_status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {"rps": (r["requests"] - errors) / secs, "p50": r["p50_us"] / 1000,
            "p99": r["p99_us"] / 1000, "errors": errors, "requests": r["requests"]}


def collect(prefix):
    vals = []
    for name in sorted(os.listdir(WORK)):
        if name.startswith(os.path.basename(prefix) + "."):
            with open(os.path.join(WORK, name)) as f:
                vals += [l.strip() for l in f if l.strip()]
            os.remove(os.path.join(WORK, name))
    return vals


# ------------------------------------------------------------------------- workloads
def workloads(ctx):
    """name → (description, wrk keyword arguments). Every one is measured each round."""
    tok, cc, rs_auth = ctx["user_access"], ctx["client_auth"], basic(RS_ID, RS_SECRET)
    call_body = lambda tool: json.dumps({"jsonrpc": "2.0", "id": "__ID__", "method": "tools/call",
                                         "params": {"name": tool, "arguments": {}}}).replace('"__ID__"', "__ID__")
    session_h = lambda t, sid: f"{MCP_HEADERS}|Authorization: Bearer {t}|Mcp-Session-Id: {sid}|MCP-Protocol-Version: {PV}"
    stateless_body = json.dumps({"jsonrpc": "2.0", "id": "__ID__", "method": "tools/call", "params": {
        "name": "test_simple_text", "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}}).replace('"__ID__"', "__ID__")
    return {
        "hello": ("bare axum handler (the ceiling)", dict(url=f"http://127.0.0.1:{HELLO_PORT}/")),
        "discovery": ("AS metadata (RFC 8414)",
                      dict(url=f"{ISSUER}/.well-known/oauth-authorization-server")),
        "jwks": ("AS JWKS", dict(url=f"{ISSUER}/jwks.json")),
        "token_cc": ("POST /token client_credentials", dict(
            url=f"{ISSUER}/token", method="POST", headers=f"{FORM}|Authorization: {cc}",
            body="grant_type=client_credentials")),
        "token_code": ("POST /token authorization_code (PKCE, new grant + refresh token)", dict(
            url=f"{ISSUER}/token", method="POST", headers=FORM, lines="codes",
            body=form({"grant_type": "authorization_code", "redirect_uri": REDIRECT,
                       "client_id": DEMO_CLIENT, "code_verifier": VERIFIER,
                       "resource": RESOURCE}) + "&code=__LINE__")),
        "introspect_active": ("POST /introspect, a live user token (resource server's credentials)", dict(
            url=f"{ISSUER}/introspect", method="POST", headers=f"{FORM}|Authorization: {rs_auth}",
            body=f"token={tok}")),
        "introspect_cc": ("POST /introspect, a client_credentials token (its own client)", dict(
            url=f"{ISSUER}/introspect", method="POST", headers=f"{FORM}|Authorization: {cc}",
            body=f"token={ctx['cc_access']}")),
        "introspect_revoked": ("POST /introspect, a revoked token", dict(
            url=f"{ISSUER}/introspect", method="POST", headers=f"{FORM}|Authorization: {rs_auth}",
            body=f"token={ctx['revoked_access']}")),
        "introspect_unknown": ("POST /introspect, an unknown token", dict(
            url=f"{ISSUER}/introspect", method="POST", headers=f"{FORM}|Authorization: {rs_auth}",
            body=f"token={secrets.token_urlsafe(32)}")),
        "rs_noop": ("RS tools/call no-op, cached token, one session", dict(
            url=RESOURCE, method="POST", headers=session_h(tok, ctx["sid"]),
            body=call_body("test_simple_text"), ids=True)),
        "rs_usage": ("RS tools/call get_api_usage (reads the store; usage counted)", dict(
            url=RESOURCE, method="POST", headers=session_h(tok, ctx["sid"]),
            body=call_body("get_api_usage"), ids=True)),
        "rs_stateless": ("RS tools/call no-op on the stateless 2026-07-28 wire", dict(
            url=RESOURCE, method="POST",
            headers=f"{MCP_HEADERS}|Authorization: Bearer {tok}|MCP-Protocol-Version: 2026-07-28"
                    "|Mcp-Method: tools/call|Mcp-Name: test_simple_text",
            body=stateless_body, ids=True)),
        "rs_garbage": ("RS refusing a garbage token (401, no AS call)", dict(
            url=RESOURCE, method="POST", expect=401,
            headers=f"{MCP_HEADERS}|Authorization: Bearer {secrets.token_urlsafe(40)}",
            body=call_body("test_simple_text"), ids=True)),
        "upstream_direct": ("tools/call to the gateway's upstream directly (no auth)", dict(
            url=f"http://127.0.0.1:{UP_PORT}/mcp", method="POST",
            headers=f"{MCP_HEADERS}|Mcp-Session-Id: {ctx['up_sid']}|MCP-Protocol-Version: {PV}",
            body=call_body("echo"), ids=True)),
        "gateway": ("tools/call through the gateway (same upstream)", dict(
            url=GATEWAY, method="POST", headers=session_h(ctx["gw_access"], ctx["gw_sid"]),
            body=call_body("echo"), ids=True)),
    }


def prepare(procs, db, workers, cpus):
    """Starts the servers on new databases; the tokens, sessions and client the workloads use."""
    for port in (AS_PORT, RS_PORT):
        if not port_free(port):
            raise SystemExit(f"port {port} is taken: stop what listens there first")
    data = os.path.join(WORK, f"data-{db}")
    fresh_databases(db, data)
    env = stack_env(db, workers, data)
    t0 = time.time()
    stack = procs.start([f"{BIN}/mcp-stack", "--data-dir", data], env, cpus, f"stack-{db}-{workers}")
    wait_http(f"{ISSUER}/.well-known/oauth-authorization-server")
    wait_http(f"http://127.0.0.1:{RS_PORT}/.well-known/oauth-protected-resource/mcp")
    startup = time.time() - t0
    out = subprocess.run([f"{BIN}/authz-server", "admin", "client", "add", "--name", "bench",
                          "--confidential", "--scope", "mcp:read mcp:write"],
                         env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"admin client add failed: {out.stderr}")
    out = out.stdout
    cid = re.search(r"client_id\W+(\S+)", out).group(1)
    secret = re.search(r"client_secret\W+(\S+)", out).group(1)
    ctx = {"stack": stack, "env": env, "data": data, "startup": startup,
           "client_auth": basic(cid, secret), "client_id": cid}
    status, _, body = call("POST", f"{ISSUER}/token", "grant_type=client_credentials",
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "Authorization": ctx["client_auth"]})
    assert status == 200, body
    ctx["cc_access"] = json.loads(body)["access_token"]
    ctx["user_access"] = user_token()["access_token"]
    revoked = user_token()["access_token"]
    status, _, _ = call("POST", f"{ISSUER}/revoke", form({"token": revoked}), {
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": basic(RS_ID, RS_SECRET)})
    ctx["revoked_access"] = revoked
    ctx["sid"] = session(RESOURCE, ctx["user_access"])
    ctx["gw_access"] = user_token(GATEWAY, "mcp:read")["access_token"]
    ctx["gw_sid"] = session(GATEWAY, ctx["gw_access"])
    status, hdrs, _ = call("POST", f"http://127.0.0.1:{UP_PORT}/mcp", json.dumps({
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PV, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}),
        {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    ctx["up_sid"] = hdrs["mcp-session-id"]
    call("POST", f"http://127.0.0.1:{UP_PORT}/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
         {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
          "Mcp-Session-Id": ctx["up_sid"]})
    return ctx


# More codes than the code exchange can redeem per second; a run that ran out would show
# errors (each request beyond them sends an empty code).
CODES_PER_SECOND = 6000


def make_codes(n, cpus):
    """Codes for the code-exchange workload, made by the headless /authorize as fast as it goes."""
    codes = []
    while len(codes) < n:
        wrk(authorize_url(RESOURCE), 16, 2, expect=302, capture=os.path.join(WORK, "code"),
            capture_kind="code", cpus=cpus)
        codes += collect(os.path.join(WORK, "code"))
    path = os.path.join(WORK, "codes")
    with open(path, "w") as f:
        f.write("\n".join(codes) + "\n")
    return path


def run_config(procs, db, workers, args, cpus):
    server_cpus, client_cpus = cpus
    ctx = prepare(procs, db, workers, server_cpus)
    rs_metrics = f"http://127.0.0.1:{RS_PORT}/metrics"
    rounds = []
    for r in range(args.rounds):
        ws = workloads(ctx)
        res = {}
        for name, (_, kw) in ws.items():
            if args.only and name not in args.only and name != "hello":
                continue
            single_use = kw.get("lines") == "codes"

            def run(seconds):
                # Each run redeems codes of its own, made just before it.
                if single_use:
                    kw["lines"] = make_codes(int(CODES_PER_SECOND * seconds), client_cpus)
                return wrk(conns=args.conns, duration=seconds, cpus=client_cpus, **kw)

            kw = dict(kw)
            if name == "rs_garbage":
                before = metric(f"{ISSUER}/metrics", "http_requests_total", 'route="/introspect"')
            if args.warmup:
                run(args.warmup)
            res[name] = run(args.duration)
            if name == "rs_garbage":
                after = metric(f"{ISSUER}/metrics", "http_requests_total", 'route="/introspect"')
                res[name]["as_calls"] = after - before
            log(f"  {db} w{workers} round {r + 1} {name:<20} {res[name]['rps']:>9.0f} req/s "
                f"p50 {res[name]['p50']:.2f} ms p99 {res[name]['p99']:.2f} ms errors {res[name]['errors']}")
        rounds.append(res)
    ctx["rss"] = rss_mib(ctx["stack"].pid)
    procs.stop(ctx["stack"])
    return ctx, rounds


def summarise(rounds):
    """Medians over rounds; each ratio is the median of the per-round ratios to hello."""
    out = {}
    for name in rounds[0]:
        rs = [r[name] for r in rounds if name in r]
        out[name] = {
            "rps": statistics.median(x["rps"] for x in rs),
            "p50": statistics.median(x["p50"] for x in rs),
            "p99": statistics.median(x["p99"] for x in rs),
            "errors": sum(x["errors"] for x in rs),
            "ratio": statistics.median(x["rps"] / r["hello"]["rps"] for x, r in zip(rs, rounds)),
            "as_calls": sum(x.get("as_calls", 0) for x in rs),
        }
    return out


# ------------------------------------------------------------------------- scale checks
def grants_sql(n, db, first):
    """n live grants (numbered from `first`), each with a live access-token row."""
    now = int(time.time())
    if db == "postgres":
        series = f"SELECT g AS x FROM generate_series({first}, {first + n - 1}) g"
    else:
        series = (f"WITH RECURSIVE s(x) AS (SELECT {first} UNION ALL SELECT x + 1 FROM s "
                  f"WHERE x < {first + n - 1}) SELECT x FROM s")
    uid = "(SELECT id FROM users WHERE username = 'testuser')"
    return [
        f"INSERT INTO grants (id, user_id, client_id, resource, scope, created_at, last_used_at) "
        f"SELECT 'bench-grant-' || x, {uid}, '{DEMO_CLIENT}', '{RESOURCE}', 'mcp:read', {now}, {now} FROM ({series}) t",
        f"INSERT INTO access_tokens (jti, grant_id, client_id, user_id, resource, scope, issued_at, expires_at) "
        f"SELECT 'bench-jti-' || x, 'bench-grant-' || x, '{DEMO_CLIENT}', {uid}, '{RESOURCE}', 'mcp:read', {now}, {now + 86400} FROM ({series}) t",
        f"INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) "
        f"SELECT 'bench-rt-' || x, 'bench-grant-' || x, {now}, {now + 86400} FROM ({series}) t",
    ]


def add_grants(db, data, n, first=1):
    if db == "postgres":
        for sql in grants_sql(n, db, first):
            psql(sql, "bench_as")
        psql("CHECKPOINT", "bench_as")
        psql("ANALYZE", "bench_as")
    else:
        import sqlite3
        con = sqlite3.connect(os.path.join(data, "authz.db"), timeout=60)
        for sql in grants_sql(n, db, first):
            con.execute(sql)
        con.commit()
        # Into the database file now, not during the measurement after it.
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()


def scale(procs, db, args, cpus):
    """Introspection at 10 and at 1,000,000 grants; memory with 100,000 cached tokens."""
    server_cpus, client_cpus = cpus
    ctx = prepare(procs, db, 1, server_cpus)
    out = {"startup": ctx["startup"]}
    ws = workloads(ctx)
    # A live token (answered from what the server remembers) and an unknown one (a lookup
    # among the refresh tokens on every call, the path that reads the database).
    kinds = {"active": ws["introspect_active"][1], "unknown": ws["introspect_unknown"][1]}

    def measure(label):
        for kind, kw in kinds.items():
            rates = []
            for _ in range(args.rounds):
                wrk(conns=args.conns, duration=args.warmup or 1, cpus=client_cpus, **kw)
                rates.append(wrk(conns=args.conns, duration=args.duration, cpus=client_cpus, **kw)["rps"])
            out[f"introspect_{kind}_{label}"] = statistics.median(rates)

    add_grants(db, ctx["data"], 10)
    measure("10")
    log(f"  {db} adding 1,000,000 grants")
    add_grants(db, ctx["data"], 1_000_000 - 10, first=11)
    measure("1m")
    # Memory: each server in its own process, so the resource server's figure is its own.
    procs.stop(ctx["stack"])
    env = {**ctx["env"], "RS_ISSUER": ISSUER}
    authz = procs.start([f"{BIN}/authz-server"], env, server_cpus, f"authz-{db}")
    wait_http(f"{ISSUER}/.well-known/oauth-authorization-server")
    rs = procs.start([f"{BIN}/resource-server"], env, server_cpus, f"rs-{db}")
    wait_http(f"http://127.0.0.1:{RS_PORT}/.well-known/oauth-protected-resource/mcp")
    # 100,000 distinct tokens, each presented to the resource server once.
    log(f"  {db} minting 100,000 tokens")
    tokens = []
    while len(tokens) < 100_000:
        wrk(f"{ISSUER}/token", 32, 3, method="POST", headers=f"{FORM}|Authorization: {ctx['client_auth']}",
            body="grant_type=client_credentials", capture=os.path.join(WORK, "tok"), cpus=client_cpus)
        tokens += collect(os.path.join(WORK, "tok"))
    tokens = tokens[:100_000]
    path = os.path.join(WORK, "tokens")
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    before = rss_mib(rs.pid)
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    rs_metrics = f"http://127.0.0.1:{RS_PORT}/metrics"
    # Each run starts at the top of its file: the file holds only the tokens not yet sent.
    left = tokens
    while left:
        with open(path, "w") as f:
            f.write("\n".join(left) + "\n")
        r = wrk(RESOURCE, 32, 5, method="POST", headers=f"{MCP_HEADERS}|Authorization: Bearer __LINE__",
                body=ping, lines=path, cpus=client_cpus)
        left = left[r["requests"]:]
    out["rss_before_mib"] = before
    out["rss_100k_mib"] = rss_mib(rs.pid)
    out["rss_authz_mib"] = rss_mib(authz.pid)
    out["rs_introspections"] = metric(rs_metrics, "introspection_calls_total")
    procs.stop(rs)
    procs.stop(authz)
    return out


# ------------------------------------------------------------------------- output
ROWS = ["discovery", "jwks", "token_cc", "token_code", "introspect_active", "introspect_cc",
        "introspect_revoked", "introspect_unknown", "rs_noop", "rs_stateless", "rs_usage",
        "rs_garbage", "upstream_direct", "gateway"]


def table(results, descriptions, machine, scale=None):
    configs = list(results)
    lines = [f"Measured by `scripts/bench` on {machine}; req/s and, in brackets, the share of a bare "
             "axum handler's req/s measured in the same round (the figure that carries across machines).",
             "", "| workload | " + " | ".join(configs) + " | p99 ms (first column) |",
             "|---|" + "---:|" * len(configs) + "---:|"]
    for name in ROWS:
        if name not in results[configs[0]]:
            continue
        cells = []
        for c in configs:
            x = results[c].get(name)
            cells.append(f"{x['rps']:,.0f} ({100 * x['ratio']:.0f} %)" if x else "")
        x = results[configs[0]][name]
        lines.append(f"| {descriptions[name]} | " + " | ".join(cells) + f" | {x['p99']:.1f} |")
    hello = " · ".join(f"{c}: {results[c]['hello']['rps']:,.0f}" for c in configs)
    lines += ["", f"Bare axum handler, req/s: {hello}."]
    for label, x in (scale or {}).items():
        lines += ["", f"{label}: start-up to serving {x['startup'] * 1000:.0f} ms on a new data directory; "
                  f"introspection of a live token {x['introspect_active_10']:,.0f} req/s at 10 grants and "
                  f"{x['introspect_active_1m']:,.0f} at 1,000,000, of an unknown token (a database read) "
                  f"{x['introspect_unknown_10']:,.0f} and {x['introspect_unknown_1m']:,.0f}; the resource "
                  f"server's resident memory (its own process) {x['rss_before_mib']:.0f} MiB, "
                  f"{x['rss_100k_mib']:.0f} MiB after 100,000 distinct tokens were presented to it and "
                  f"cached (the authorization server's then {x['rss_authz_mib']:.0f} MiB)."]
    return "\n".join(lines)


def update_readme(text):
    path = os.path.join(ROOT, "README.md")
    readme = open(path).read()
    start, end = readme.index(README_BEGIN), readme.index(README_END)
    readme = readme[:start + len(README_BEGIN)] + "\n" + text + "\n" + readme[end:]
    open(path, "w").write(readme)


def main():
    global WORK
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default="sqlite,postgres")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--only", type=lambda s: s.split(","), help="workloads to run (hello always)")
    p.add_argument("--scale", action="store_true", help="also the grants, memory and start-up checks")
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()
    WORK = tempfile.mkdtemp(prefix="mcp-bench-")
    dbs = args.db.split(",")
    if "postgres" in dbs and subprocess.run(["psql", f"{PG}/postgres", "-qc", "select 1"],
                                            capture_output=True).returncode != 0:
        log(f"PostgreSQL at {PG} is not reachable: SQLite only")
        dbs.remove("postgres")
    for port in (HELLO_PORT, UP_PORT):
        if not port_free(port):
            raise SystemExit(f"port {port} is taken: stop what listens there first")
    ncpu = len(os.sched_getaffinity(0))
    procs = Procs()
    results, scale_results, descriptions = {}, {}, {}
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            # The load generator gets core 0, the servers the next `workers` cores; with too
            # few cores they share.
            if ncpu > workers:
                cpus = (f"1-{workers}" if workers > 1 else "1", "0")
            else:
                cpus = (None, None)
            hello = procs.start([f"{BIN}/bench-hello", f"127.0.0.1:{HELLO_PORT}"],
                                {"TOKIO_WORKER_THREADS": str(workers)}, cpus[0], "hello")
            upstream = procs.start([f"{BIN}/fake-mcp-upstream", "--http", f"127.0.0.1:{UP_PORT}"],
                                   {"TOKIO_WORKER_THREADS": str(workers)}, cpus[0], "upstream")
            wait_http(f"http://127.0.0.1:{HELLO_PORT}/")
            for db in dbs:
                label = f"{'SQLite' if db == 'sqlite' else 'PostgreSQL'}, {workers} worker{'s' if workers > 1 else ''}"
                log(f"== {label}")
                ctx, rounds = run_config(procs, db, workers, args, cpus)
                results[label] = summarise(rounds)
                results[label]["_rss"] = ctx["rss"]
                results[label]["_startup"] = ctx["startup"]
                descriptions = {k: v[0] for k, v in workloads(ctx).items()}
                if args.scale and workers == 1:
                    try:
                        scale_results[label] = scale(procs, db, args, cpus)
                    except Exception as e:  # the figures measured so far still count
                        log(f"  {label}: the scale checks failed: {e!r}")
                        procs.stop_all()
                        hello = procs.start([f"{BIN}/bench-hello", f"127.0.0.1:{HELLO_PORT}"],
                                            {"TOKIO_WORKER_THREADS": str(workers)}, cpus[0], "hello")
                        upstream = procs.start([f"{BIN}/fake-mcp-upstream", "--http", f"127.0.0.1:{UP_PORT}"],
                                               {"TOKIO_WORKER_THREADS": str(workers)}, cpus[0], "upstream")
                        wait_http(f"http://127.0.0.1:{HELLO_PORT}/")
            procs.stop(hello)
            procs.stop(upstream)
    finally:
        procs.stop_all()
    print()
    for label, res in results.items():
        print(f"== {label}   (resident memory of mcp-stack at the end {res['_rss']:.0f} MiB, "
              f"start-up to serving {res['_startup'] * 1000:.0f} ms)")
        print(f"{'workload':<22} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'of hello':>9}")
        for name, x in res.items():
            if name.startswith("_"):
                continue
            extra = f"  AS calls {x['as_calls']:.0f}" if name == "rs_garbage" else ""
            print(f"{name:<22} {x['rps']:>9.0f} {x['p50']:>7.2f} {x['p99']:>7.2f} {x['errors']:>7} "
                  f"{100 * x['ratio']:>8.1f}%{extra}")
        r = res
        if "gateway" in r and "upstream_direct" in r:
            print(f"gateway ÷ upstream directly: {100 * r['gateway']['rps'] / r['upstream_direct']['rps']:.0f} %")
        print()
    for label, s in scale_results.items():
        print(f"== {label}, scale: start-up {s['startup'] * 1000:.0f} ms")
        for kind in ("active", "unknown"):
            a, b = s[f"introspect_{kind}_10"], s[f"introspect_{kind}_1m"]
            print(f"   introspection of a{'n' if kind == 'unknown' else ''} {kind} token at 10 grants {a:.0f} req/s, "
                  f"at 1,000,000 {b:.0f} req/s ({100 * b / a:.0f} %)")
        print(f"   resident memory of the resource server alone {s['rss_before_mib']:.0f} MiB before and "
              f"{s['rss_100k_mib']:.0f} MiB after 100,000 distinct tokens were presented to it "
              f"({s['rs_introspections']:.0f} introspections, each answer cached); the authorization "
              f"server then {s['rss_authz_mib']:.0f} MiB")
    if args.json:
        json.dump({"results": results, "scale": scale_results}, open(args.json, "w"), indent=1)
    machine = f"{ncpu} cores, wrk -t1 -c{args.conns}, {args.rounds} rounds of {args.duration} s"
    text = table({k: {n: x for n, x in v.items() if not n.startswith("_")} for k, v in results.items()},
                 descriptions, machine, scale_results)
    print(text)
    if args.update_readme:
        update_readme(text)
        print("README.md: performance table updated")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
