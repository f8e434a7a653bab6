// node-oidc-provider's UserInfo endpoint (GET /me) with mTLS certificate-bound access tokens, over HTTPS that
// asks for a client certificate optionally (requestCert without rejectUnauthorized).
//
//   node oidc-provider-server.mjs DIR JKT
//
// DIR holds server.pem, server.key, ca.pem and client.pem (the certificate bound tokens are bound to); JKT
// is the RFC 7638 thumbprint of the client's DPoP key. UserInfo accepts only this provider's own tokens, so
// the script mints them at startup through the provider's API and prints them with the port, as one JSON
// line on stdout: {"ready": true, "port": N, "issuer": "...", "tokens": {"bound": ..., ...}}.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import Provider from 'oidc-provider';

const [dir, jkt] = process.argv.slice(2);
if (!dir || !jkt) {
  console.error('usage: node oidc-provider-server.mjs DIR JKT');
  process.exit(2);
}
const read = (name) => fs.readFileSync(path.join(dir, name));
const clientCertificate = new crypto.X509Certificate(read('client.pem'));

const server = https.createServer({
  cert: read('server.pem'),
  key: read('server.key'),
  ca: read('ca.pem'),
  requestCert: true,
  rejectUnauthorized: false,
});

async function start(port) {
  const issuer = `https://127.0.0.1:${port}`;
  const signing = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'lab-client',
        client_secret: 'lab-client-secret',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: 'ES256',
        tls_client_certificate_bound_access_tokens: true,
      },
    ],
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    jwks: { keys: [{ ...signing.export({ format: 'jwk' }), use: 'sig', alg: 'ES256' }] },
    features: {
      devInteractions: { enabled: false },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        // The certificate the client presented on this TLS connection (an X509Certificate), or none.
        getCertificate: (ctx) => ctx.socket.getPeerX509Certificate(),
      },
    },
    findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    ttl: { AccessToken: 3600, Grant: 3600 },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const client = await provider.Client.find('lab-client');
  const grant = new provider.Grant({ accountId: 'alice', clientId: client.clientId });
  grant.addOIDCScope('openid profile');
  const grantId = await grant.save();
  const mint = (change = () => {}, { scope = 'openid', ...rest } = {}) => {
    const token = new provider.AccessToken({
      accountId: 'alice', client, grantId, scope, gty: 'authorization_code', ...rest,
    });
    change(token);
    return token.save();
  };
  const tokens = {
    bound: await mint((t) => t.setThumbprint('x5t', clientCertificate)),
    unbound: await mint(),
    'dpop-bound': await mint((t) => t.setThumbprint('jkt', jkt)),
    'insufficient-scope': await mint((t) => t.setThumbprint('x5t', clientCertificate), { scope: 'profile' }),
    'wrong-audience': await mint((t) => {
      t.setThumbprint('x5t', clientCertificate);
      t.setAudience('https://other-rs.mtlslab.test');
    }),
    // Expired a minute ago (beyond the provider's 15 s clock tolerance, so its storage drops it at once).
    expired: await mint((t) => {
      t.setThumbprint('x5t', clientCertificate);
      const now = Math.floor(Date.now() / 1000);
      Object.assign(t, { iat: now - 120, exp: now - 60 });
    }),
  };

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ ready: true, port, issuer, tokens })}\n`);
}

server.listen(0, '127.0.0.1', () => {
  start(server.address().port).catch((err) => {
    console.error(err);
    process.exit(1);
  });
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
