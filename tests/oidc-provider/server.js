// A real OpenID provider (the certified `oidc-provider` package) for the
// single sign-on tests, on a loopback port. Everything comes from the
// environment, so each test starts one shaped for it:
//
//   PORT            the port (required); the issuer is http://127.0.0.1:PORT
//   CLIENT_ID, CLIENT_SECRET, REDIRECT_URI   the dashboard's registration
//   USERS_FILE      JSON {"login": {"groups": [...], "email": "..."}}, read
//                   at every sign-in so a test can move a user between groups
//   GROUPS_IN       "id_token" (default) or "userinfo": where `groups` goes
//   TAMPER_ID_TOKEN "audience", "expired" or "signature": the token endpoint
//                   answers with an ID token re-signed with the provider's own
//                   key for another audience / already expired, or signed
//                   with a key the provider does not publish
//
// Sign-in uses the package's development interactions: a form taking any
// login and password, then a consent page. The login names the account.
import fs from 'node:fs';
import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK } from 'jose';

const env = (name, fallback) => process.env[name] ?? fallback;
const port = Number(env('PORT'));
if (!port) {
  console.error('PORT is required');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const groupsIn = env('GROUPS_IN', 'id_token');
const tamper = env('TAMPER_ID_TOKEN', '');

async function signingKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

const published = await signingKey('published');
const unpublished = await signingKey('published'); // same kid, other key

function users() {
  const file = env('USERS_FILE');
  return file ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('CLIENT_ID', 'tms-dashboard'),
    client_secret: env('CLIENT_SECRET', 'test-secret'),
    redirect_uris: [env('REDIRECT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [published] },
  cookies: { keys: ['tms-test-cookie-key'] },
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  // false: the claims of the granted scopes go into the ID token too.
  conformIdTokenClaims: groupsIn === 'userinfo',
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const user = users()[id] ?? {};
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, preferred_username: id, name: id };
        if (user.email) claims.email = user.email;
        if (user.groups) claims.groups = user.groups;
        return claims;
      },
    };
  },
});
// Plain HTTP on the loopback: no proxy in front.
provider.proxy = false;

provider.use(async (ctx, next) => {
  await next();
  if (!tamper || ctx.path !== '/token' || !ctx.body?.id_token) return;
  const claims = decodeJwt(ctx.body.id_token);
  const { kid } = decodeProtectedHeader(ctx.body.id_token);
  let key = published;
  if (tamper === 'audience') claims.aud = 'another-application';
  if (tamper === 'expired') {
    claims.iat -= 7200;
    claims.exp = Math.floor(Date.now() / 1000) - 3600;
  }
  if (tamper === 'signature') key = unpublished;
  ctx.body.id_token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid })
    .sign(await importJWK(key, 'RS256'));
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
