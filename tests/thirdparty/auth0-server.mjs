// auth0's express-oauth2-jwt-bearer guarding GET /resource, over HTTPS that asks for a client certificate
// optionally (requestCert without rejectUnauthorized, like mtlslab's `optional` deployment).
//
//   NODE_ENV=production|development NODE_EXTRA_CA_CERTS=ca.pem \
//     node auth0-server.mjs CONFIG ISSUER AUDIENCE DIR
//
// CONFIG: `supplier` (a certificate supplier: cnf.x5t#S256 is checked), `default` (no supplier: the SDK's
// default, cnf is ignored) or `required` (a supplier and mtls.required: tokens without cnf.x5t#S256 are
// refused). ISSUER is the lab issuer's URL (its RFC 8414 / OIDC metadata names the JWKS), AUDIENCE the
// audience tokens must carry; the resource also needs scope `read`. DIR holds server.pem, server.key and
// ca.pem. NODE_EXTRA_CA_CERTS must name the lab CA, so that Node trusts the issuer's certificate. Listens
// on 127.0.0.1, port 0, and prints one JSON line on stdout: {"ready": true, "port": N}.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import express from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';

const CONFIGS = new Set(['supplier', 'default', 'required']);
const [config, issuer, audience, dir] = process.argv.slice(2);
if (!CONFIGS.has(config) || !issuer || !audience || !dir) {
  console.error('usage: node auth0-server.mjs supplier|default|required ISSUER AUDIENCE DIR');
  process.exit(2);
}

// The certificate the client presented on this TLS connection, as DER (the SDK hashes DER or PEM); none
// when the client sent none. The chain was not required to verify (rejectUnauthorized is false): the
// binding check compares thumbprints, and TLS has already proved possession of the certificate's key.
function peerCertificate(req) {
  const cert = req.socket.getPeerCertificate();
  return cert && cert.raw ? cert.raw : undefined;
}

const options = { issuerBaseURL: issuer, audience };
if (config !== 'default') options.getCertificate = peerCertificate;
if (config === 'required') options.mtls = { enabled: true, required: true };

const app = express();
// Like mtlslab's own resource server, the resource needs scope `read`, and answers with the same JSON, so
// that a probe's control compares.
app.get('/resource', auth(options), requiredScopes('read'), (req, res) => {
  const { sub, client_id: clientId } = req.auth.payload;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ resource: 'the protected resource', sub, client_id: clientId }));
});

const server = https.createServer(
  {
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
    key: fs.readFileSync(path.join(dir, 'server.key')),
    ca: fs.readFileSync(path.join(dir, 'ca.pem')),
    requestCert: true,
    rejectUnauthorized: false,
  },
  app,
);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
