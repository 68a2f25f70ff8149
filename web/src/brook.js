// Everything the app needs to talk to Brook: a token, and Apollo Client with
// HTTP for queries and mutations and graphql-ws for subscriptions.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import { typePolicies } from './cache.js';

const api = `${location.origin}/query`;

// Sessions live per browser tab, so two tabs can be two different people.
export function currentSession() {
  const raw = sessionStorage.getItem('brook.session');
  return raw ? JSON.parse(raw) : null;
}

// signIn asks the dev-only token endpoint (BROOK_DEV=true) for a token. A
// real app gets its token from its own backend, which signs it with the
// same secret (BROOK_JWT_SECRET).
export async function signIn(userId) {
  const r = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(body.errors?.[0]?.message ?? `sign-in failed (${r.status})`);
  const session = { userId, token: body.token };
  sessionStorage.setItem('brook.session', JSON.stringify(session));
  return session;
}

export function signOut() {
  sessionStorage.removeItem('brook.session');
}

// The Apollo Client setup a frontend team needs: queries and mutations over
// HTTP, subscriptions over graphql-ws, one normalized cache (cache.js says
// how it pages Brook's connections).
export function createApollo(token) {
  const http = new HttpLink({ uri: api, headers: { authorization: `Bearer ${token}` } });
  const ws = new GraphQLWsLink(createClient({ url: api.replace(/^http/, 'ws'), connectionParams: { authToken: token } }));
  const link = ApolloLink.split(({ query }) => getMainDefinition(query).operation === 'subscription', ws, http);
  return new ApolloClient({ link, cache: new InMemoryCache({ typePolicies }) });
}
