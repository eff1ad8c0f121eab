// Validates an AsyncAPI document with AsyncAPI's official parser, external
// $refs resolved from the document's own folder. Prints each diagnostic;
// exits 1 when any is an error. Usage: node validate.mjs docs/asyncapi.yaml
import { Parser, fromFile } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs <asyncapi document>');
  process.exit(2);
}
const severities = ['error', 'warning', 'info', 'hint'];
const { document, diagnostics } = await fromFile(new Parser(), file).parse();
for (const d of diagnostics) {
  const where = d.path && d.path.length ? d.path.join('.') : '(document)';
  console.log(`${severities[d.severity] ?? d.severity}: ${where}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0).length;
if (!document || errors > 0) {
  console.error(`${file}: ${errors} error(s)`);
  process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
console.log(`${file}: valid AsyncAPI ${document.version()}; channels: ${channels.join(', ')}`);
