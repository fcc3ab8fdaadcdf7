// Verifies one received request with code nobody on this project wrote:
//   node verify.js standard SECRET REQUEST_JSON  -> the official `standardwebhooks` package
//   node verify.js relay SECRET REQUEST_JSON     -> the user guide's Node.js snippet, verbatim
// REQUEST_JSON is a file {"headers": {...}, "body": "..."} written by the test.
// Prints "verified" and exits 0, or prints the reason and exits 1.
'use strict';
const fs = require('fs');

const crypto = require('crypto');

function verifySignature(payload, signature, secret) {
  const expected = crypto
    .createHmac('sha256', secret)
    .update(payload)
    .digest('hex');

  return `sha256=${expected}` === signature;
}

const [scheme, secret, file] = process.argv.slice(2);
const request = JSON.parse(fs.readFileSync(file, 'utf8'));
const headers = {};
for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;

if (scheme === 'standard') {
  const { Webhook } = require('standardwebhooks');
  try {
    new Webhook(secret).verify(request.body, headers);
    console.log('verified');
  } catch (e) {
    console.log(`rejected: ${e.message}`);
    process.exit(1);
  }
} else if (scheme === 'relay') {
  if (verifySignature(request.body, headers['x-relay-signature'], secret)) {
    console.log('verified');
  } else {
    console.log('rejected');
    process.exit(1);
  }
} else {
  console.error(`unknown scheme ${scheme}`);
  process.exit(2);
}
