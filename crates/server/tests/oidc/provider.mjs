// The OpenID provider Countersign's single sign-on tests sign in at: `oidc-provider` (OpenID
// Certified), configured here for the test, on 127.0.0.1 at a free port.
//
//   OIDC_NODE_MODULES=<folder holding node_modules/oidc-provider> \
//   OIDC_ACCOUNTS_FILE=<accounts.json> OIDC_CLIENT_ID=... OIDC_CLIENT_SECRET=... node provider.mjs
//
// Prints `issuer <url>` once it listens. The accounts file maps a subject (the login name at the
// development login page) to its claims
// ({"alice": {"email": ..., "groups": [...]}}), and is read at every sign-in, so a test can change
// someone's groups between two sign-ins. Sign-in uses the package's development interaction
// pages (any password); consent is granted at once (a first-party client). Claims go into the
// ID token, as Entra ID, Okta and Keycloak can be configured to do.

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const modules = process.env.OIDC_NODE_MODULES;
if (!modules) {
  console.error('OIDC_NODE_MODULES must name the folder holding node_modules/oidc-provider');
  process.exit(2);
}
// The package is installed outside the repository: resolve it from there.
const require = createRequire(`${modules.replace(/\/$/, '')}/`);
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);

const accountsFile = process.env.OIDC_ACCOUNTS_FILE;
const accounts = () => JSON.parse(readFileSync(accountsFile, 'utf8'));

const server = createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
// The issuer's host: 127.0.0.1, or `localhost` where a browser test needs the provider on
// another site than Countersign (so that the return is a cross-site navigation, as in life).
const issuer = `http://${process.env.OIDC_HOST ?? '127.0.0.1'}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    // Replaced below: the test's server listens on a port chosen after this one.
    redirect_uris: ['http://127.0.0.1/sso/callback'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // The login name typed at the development login page is the subject (`sub`).
  async findAccount(ctx, id) {
    const claims = accounts()[id];
    if (claims === undefined) return undefined;
    return {
      accountId: id,
      async claims() { return { ...claims, sub: id }; },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
});
// Any Countersign test server on this machine may be sent back to.
const callback = /^http:\/\/127\.0\.0\.1:\d+\/sso\/[A-Za-z0-9-]+\/callback$/;
provider.Client.prototype.redirectUriAllowed = (value) => callback.test(value);
provider.on('server_error', (ctx, error) => { console.error('server_error', error); });

server.on('request', provider.callback());
console.log(`issuer ${issuer}`);
// The package's own notices go to stderr from now on: stdout carries only the line above.
console.log = console.error;
console.info = console.error;
