// Checks recorded answers of the running daemon against docs/openapi.yaml with Ajv (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1):
//   node openapi-check.js OPENAPI_YAML EXCHANGES_JSON
// EXCHANGES_JSON is [{"method","path","status","body"}] where path is the template
// ("/v1/webhooks/{id}"). Every exchange must be described (path, method and status) and its
// JSON body must match the schema. Prints "ok N" and exits 0, or one line per mismatch, exit 1.
'use strict';
const fs = require('fs');
const YAML = require('yaml');
const Ajv2020 = require('ajv/dist/2020');

const [specFile, exchangesFile] = process.argv.slice(2);
const spec = YAML.parse(fs.readFileSync(specFile, 'utf8'));
const exchanges = JSON.parse(fs.readFileSync(exchangesFile, 'utf8'));

if (!/^3\.1\./.test(spec.openapi)) {
  console.log(`openapi: expected 3.1.x, found ${spec.openapi}`);
  process.exit(1);
}
const ajv = new Ajv2020({ strict: false, allErrors: true });
// Schemas refer to "#/components/...": register the whole document under one id.
ajv.addSchema({ $id: 'spec', components: spec.components });
const resolve = (node) =>
  node && node.$ref ? resolve(node.$ref.split('/').slice(1).reduce((n, k) => n[k], spec)) : node;
const rebase = (schema) =>
  JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"spec#/components/'));

let failures = 0;
for (const ex of exchanges) {
  const where = `${ex.method} ${ex.path} ${ex.status}`;
  const op = spec.paths[ex.path] && spec.paths[ex.path][ex.method.toLowerCase()];
  if (!op) {
    console.log(`${where}: not in the description`);
    failures++;
    continue;
  }
  const response = resolve(op.responses[String(ex.status)]);
  if (!response) {
    console.log(`${where}: status not described`);
    failures++;
    continue;
  }
  const media = response.content && (response.content['application/json'] || response.content['text/plain']);
  if (!media) continue;
  const body = response.content['application/json'] ? JSON.parse(ex.body) : ex.body;
  const validate = ajv.compile(rebase(media.schema));
  if (!validate(body)) {
    console.log(`${where}: ${ajv.errorsText(validate.errors)}`);
    failures++;
  }
}
if (failures) process.exit(1);
console.log(`ok ${exchanges.length}`);
