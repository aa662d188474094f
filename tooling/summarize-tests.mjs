#!/usr/bin/env node
// Sums the native (JUnit XML from ctest) and vitest (JSON) results into one closing line.
import { existsSync, readFileSync } from 'node:fs';
const [junit, vitestJson] = process.argv.slice(2);
let passed = 0, failed = 0, skipped = 0;
if (existsSync(junit)) {
  const x = readFileSync(junit, 'utf8');
  const m = /<testsuite[^>]*\btests="(\d+)"[^>]*\bfailures="(\d+)"[^>]*>/.exec(x);
  const sk = /<testsuite[^>]*\bskipped="(\d+)"/.exec(x);
  if (m) { const t = +m[1], f = +m[2], s = sk ? +sk[1] : 0; passed += t - f - s; failed += f; skipped += s; }
} else { failed += 1; console.error(`missing ${junit}`); }
if (existsSync(vitestJson)) {
  const v = JSON.parse(readFileSync(vitestJson, 'utf8'));
  passed += v.numPassedTests; failed += v.numFailedTests + (v.numFailedTestSuites ?? 0);
  skipped += (v.numPendingTests ?? 0) + (v.numTodoTests ?? 0);
} else { failed += 1; console.error(`missing ${vitestJson}`); }
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
