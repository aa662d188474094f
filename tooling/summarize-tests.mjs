#!/usr/bin/env node
// Sums test results into one closing line "tests: N passed, M failed": JUnit-style XML (ctest,
// GoogleTest) and vitest JSON reports, any number of each. A missing report counts as a failure.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0, failed = 0, skipped = 0;
const attr = (tag, name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(tag)?.[1] ?? 0);
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) { failed += 1; console.error(`missing test report ${file}`); continue; }
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.xml')) {
    const tag = /<testsuites?\b[^>]*>/.exec(text)?.[0];
    if (!tag) { failed += 1; console.error(`unreadable test report ${file}`); continue; }
    const f = attr(tag, 'failures') + attr(tag, 'errors');
    const s = attr(tag, 'skipped') + attr(tag, 'disabled');
    passed += attr(tag, 'tests') - f - s; failed += f; skipped += s;
  } else {
    const v = JSON.parse(text);
    passed += v.numPassedTests; failed += v.numFailedTests || (v.numFailedTestSuites ?? 0);  // a suite that failed outside any test (import error) still counts
    skipped += (v.numPendingTests ?? 0) + (v.numTodoTests ?? 0);
  }
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
