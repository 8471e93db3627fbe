#!/usr/bin/env python3
"""Turns the suite's JSON lines into the compatibility table (Markdown).

Usage: report.py RESULTS.jsonl OUT.md [README.md]
       report.py --summary PART.jsonl
With README.md, the table between the interop markers is replaced, so the README always
shows what the suite last produced. Exits 1 when any line is a failure.
"""
import json
import sys

MODES = [
    ("dcr-public", "DCR, public (`none`)"),
    ("dcr-client_secret_basic", "DCR, `client_secret_basic`"),
    ("dcr-client_secret_post", "DCR, `client_secret_post`"),
    ("cimd", "Client ID metadata document"),
    ("preregistered", "Pre-registered"),
    ("step-up", "Step-up (403 → re-authorize)"),
    ("gateway-stdio", "Gateway → server-everything (stdio)"),
    ("gateway-http", "Gateway → server-everything (HTTP)"),
]
MARK = {"pass": "pass", "fail": "**FAIL**", "unsupported": "n/a", "warning": "**WARN**"}
BEGIN, END = "<!-- interop:begin -->", "<!-- interop:end -->"


def summary(path: str) -> int:
    """One line per result, for the runner's console."""
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "result" in r:
                what = r.get("mode") or r.get("scenario") or r.get("check")
                print("   ", r.get("client") or r.get("suite"), what, r["result"], r.get("detail", "")[:120])
    return 0


def main() -> int:
    if sys.argv[1] == "--summary":
        return summary(sys.argv[2])
    results, out = sys.argv[1], sys.argv[2]
    readme = sys.argv[3] if len(sys.argv) > 3 else None
    clients, suites, failed = {}, {}, False
    # What a driver saw a client do that is worth knowing though no cell failed.
    client_notes: dict[tuple[str, str], list[str]] = {}
    with open(results) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "note" in r and "client" in r:
                client_notes.setdefault((r["client"], r["version"]), []).append(r["note"])
                continue
            if "result" not in r:
                continue  # e.g. a screenshot path
            failed |= r.get("result") in ("fail", "warning")
            if "client" in r:
                key = (r["client"], r["version"])
                clients.setdefault(key, {})[r["mode"]] = r
            else:
                name = r.get("scenario") or r.get("check") or "?"
                suites.setdefault(r["suite"], []).append((name, r))

    notes, lines = [], []
    lines.append("| Client | Version | " + " | ".join(label for _, label in MODES) + " |")
    lines.append("|---|---|" + "---|" * len(MODES))
    for (client, version), cells in sorted(clients.items()):
        row = []
        for mode, _ in MODES:
            r = cells.get(mode)
            if r is None:
                row.append("not run")
                continue
            text = MARK.get(r["result"], r["result"])
            if r["result"] != "pass" and r.get("detail"):
                if r["detail"] not in notes:
                    notes.append(r["detail"])
                text += f" [{notes.index(r['detail']) + 1}]"
            row.append(text)
        lines.append(f"| {client} | {version} | " + " | ".join(row) + " |")
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {n}" for i, n in enumerate(notes, 1))
    if client_notes:
        lines.append("")
        lines.append("Seen though every cell passed:")
        for (client, version), seen in sorted(client_notes.items()):
            for n in dict.fromkeys(seen):
                lines.append(f"- {client} {version}: {n}")
    for suite, entries in sorted(suites.items()):
        passed = sum(1 for _, r in entries if r["result"] == "pass")
        lines.append("")
        lines.append(f"**{suite}**: {passed} of {len(entries)} passed")
        bad = [(n, r) for n, r in entries if r["result"] != "pass"]
        for n, r in bad:
            lines.append(f"- {n}: {r['result']} — {r.get('detail', '')}")
    table = "\n".join(lines) + "\n"
    with open(out, "w") as f:
        f.write(table)
    if readme:
        with open(readme) as f:
            text = f.read()
        start, end = text.find(BEGIN), text.find(END)
        if start < 0 or end < start:
            print(f"{readme} has no {BEGIN} … {END} block", file=sys.stderr)
            return 1
        text = text[: start + len(BEGIN)] + "\n" + table + text[end:]
        with open(readme, "w") as f:
            f.write(text)
    sys.stdout.write(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
