// A real OpenID provider on loopback for the sign-in tests: oidc-provider (npm), its development
// interactions (any password signs in), one confidential client for the hub, PKCE required.
// PORT, REDIRECT_URI, CLIENT_SECRET and GROUPS (JSON: user -> groups) come from the environment.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const groups = JSON.parse(process.env.GROUPS || '{}');

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'modelyard',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'], groups: ['groups'] },
  conformIdTokenClaims: false, // the ID token carries the claims of the scopes asked for
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: `corp-${id}`, preferred_username: id, name: `${id} (corp)`, email: `${id}@corp.example`,
      groups: groups[id] || [],
    }),
  }),
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['modelyard-test-cookie-key'] },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
