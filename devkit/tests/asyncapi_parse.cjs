// Parse an AsyncAPI document with the official parser and print its diagnostics as JSON.
// Usage: NODE_PATH=.venv/node/node_modules node asyncapi_parse.cjs docs/asyncapi.yaml
const { Parser } = require('@asyncapi/parser');
const { readFileSync } = require('node:fs');

const SEVERITY = ['error', 'warning', 'info', 'hint'];

(async () => {
  const { document, diagnostics } = await new Parser().parse(readFileSync(process.argv[2], 'utf8'));
  const found = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity],
    code: String(d.code),
    message: d.message,
    path: d.path.join('/'),
  }));
  process.stdout.write(JSON.stringify({ parsed: Boolean(document), diagnostics: found }));
})();
