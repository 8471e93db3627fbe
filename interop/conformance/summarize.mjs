#!/usr/bin/env node
// Turns one conformance CLI run into one JSON line per scenario:
//   {"suite":"authorization","scenario":"...","result":"pass|fail|warning","detail":"..."}
//
//   node summarize.mjs --suite NAME --log CLI_STDOUT --results DIR [--exit-code N]
//                      [--missing-detail TEXT]
//
// The scenarios expected are the ones the CLI announced ("=== Running scenario: X ===",
// or a single-scenario run's "Running client scenario 'X'"), so a scenario that crashed
// before writing checks.json still gets a "fail" line. Scenarios the CLI lists as not
// scored for a requirement set (extension, pending, added-after-release) get
// "scored":false. A scenario whose checks were all skipped is a "warning", not a pass.
// Exits 1 if any scored scenario failed or warned, or nothing ran.

import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
const suite = args.suite ?? 'unknown';
const log = existsSync(args.log ?? '') ? readFileSync(args.log, 'utf8').replace(/\x1b\[[0-9;]*m/g, '') : '';
const resultsDir = args.results;

const expected = [];
for (const m of log.matchAll(/^=== Running scenario: (\S+) ===$/gm)) expected.push(m[1]);
if (expected.length === 0) {
  for (const m of log.matchAll(/^Running client scenario (?:for authorization server )?'([^']+)'/gm)) expected.push(m[1]);
}
const notScored = new Map();
const ns = log.split(/^Not scored for /m)[1] ?? '';
for (const m of ns.matchAll(/^\s+[✓✗] (\S+) \(([^)]+)\)$/gm)) notScored.set(m[1], m[2]);

// checks.json per scenario; directory names are "<prefix>-<scenario>-<ISO timestamp>".
const checksByScenario = new Map();
if (resultsDir && existsSync(resultsDir)) {
  for (const d of readdirSync(resultsDir)) {
    const name = d.replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '').replace(/^(authorization-server|server)-/, '');
    const f = join(resultsDir, d, 'checks.json');
    if (existsSync(f)) checksByScenario.set(name, JSON.parse(readFileSync(f, 'utf8')));
  }
}
for (const s of checksByScenario.keys()) if (!expected.includes(s)) expected.push(s);

function oneLine(s) {
  return String(s ?? '').replace(/\s+/g, ' ').trim();
}

let bad = 0;
for (const scenario of expected) {
  const checks = checksByScenario.get(scenario);
  let result;
  let detail;
  if (!checks) {
    result = 'fail';
    detail = args['missing-detail'] ?? `no results recorded (CLI exit code ${args['exit-code'] ?? '?'})`;
  } else {
    const by = (st) => checks.filter((c) => c.status === st);
    const describe = (cs) => cs.map((c) => `${c.id}: ${oneLine(c.errorMessage ?? c.description)}`).join('; ');
    const failed = by('FAILURE');
    const warned = by('WARNING');
    if (failed.length) {
      result = 'fail';
      detail = describe(failed) + (warned.length ? ` | warnings: ${describe(warned)}` : '');
    } else if (warned.length) {
      result = 'warning';
      detail = describe(warned);
    } else if (!by('SUCCESS').length && by('SKIPPED').length) {
      // Nothing was verified: not a pass.
      result = 'warning';
      detail = `skipped: ${describe(by('SKIPPED'))}`;
    } else {
      result = 'pass';
      const skipped = by('SKIPPED');
      detail = `${by('SUCCESS').length} checks passed` +
        (skipped.length ? `, ${skipped.length} skipped (${describe(skipped)})` : '') +
        (by('INFO').length ? `, ${by('INFO').length} info` : '');
    }
  }
  const line = { suite, scenario, result, detail };
  if (notScored.has(scenario)) line.scored = false;
  else if (result !== 'pass') bad++;
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
if (expected.length === 0) {
  const tail = oneLine(log.split('\n').slice(-15).join(' ')).slice(-600);
  process.stdout.write(
    `${JSON.stringify({ suite, scenario: '(run)', result: 'fail', detail: `no scenario ran (CLI exit code ${args['exit-code'] ?? '?'}): ${tail}` })}\n`,
  );
  bad++;
}
process.exit(bad ? 1 : 0);
