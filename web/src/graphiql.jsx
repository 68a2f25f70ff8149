// GraphiQL served by Brook itself at /, so it works without a CDN.
// Paste {"Authorization": "Bearer <token>"} into the Headers tab: queries and
// mutations send it over HTTP, subscriptions in the WebSocket's
// connection_init payload. The schema is fetched again whenever the Headers
// tab changes, and in dev mode (make run) the tab starts with a token for
// "alice" when it holds none.
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { parse } from 'graphql';
import { createClient } from 'graphql-ws';
import 'graphiql/graphiql.css';

const http = `${location.origin}/query`;
const ws = http.replace(/^http/, 'ws');
const httpFetcher = createGraphiQLFetcher({ url: http, subscriptionUrl: ws });

// isSubscription reports whether the operation to run is a subscription.
function isSubscription(query, operationName) {
  try {
    return parse(query).definitions.some((d) => d.kind === 'OperationDefinition' && d.operation === 'subscription'
      && (!operationName || d.name?.value === operationName));
  } catch {
    return false; // not valid GraphQL: the server says why
  }
}

// Subscriptions go over a WebSocket of their own (graphql-ws), with the
// Headers tab as the connection_init payload: Brook refuses them over
// HTTP, and the toolkit's own choice of transport depends on GraphiQL
// handing it a parsed document, which it does not always do.
const fetcher = (params, opts) => {
  if (!isSubscription(params.query, params.operationName)) {
    return httpFetcher(params, opts);
  }
  const client = createClient({ url: ws, connectionParams: { ...(opts?.headers ?? {}) } });
  const events = client.iterate({ query: params.query, variables: params.variables, operationName: params.operationName });
  return (async function* stream() {
    try {
      yield* events;
    } finally {
      await client.dispose();
    }
  })();
};

// headersSettle is how long the Headers tab must stay unchanged before the
// schema is fetched again with it: pasting or typing a token fetches once.
const headersSettle = 500;

// parseHeaders returns the Headers tab's text as an object, or null when it
// is not a JSON object (yet: the user may be typing).
function parseHeaders(text) {
  try {
    const v = JSON.parse(text || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

// BrookGraphiQL is GraphiQL that fetches the schema again when the Headers
// tab settles on new headers, so a pasted token never leaves Docs on
// "Error fetching schema". GraphiQL introspects whenever its fetcher
// changes, with the Headers tab as it is then: a new fetcher (the same
// behaviour under a new identity) is the way to ask it to.
function BrookGraphiQL() {
  const [generation, setGeneration] = useState(0);
  const timer = useRef(undefined);
  // fetched is the headers the schema was last fetched with, as JSON.
  const fetched = useRef(undefined);
  const onEditHeaders = useCallback((text) => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      const parsed = parseHeaders(text);
      // Half-typed JSON would only make GraphiQL report the headers invalid.
      if (parsed && JSON.stringify(parsed) !== fetched.current) setGeneration((g) => g + 1);
    }, headersSettle);
  }, []);
  useEffect(() => () => clearTimeout(timer.current), []);
  const current = useMemo(() => (params, opts) => {
    if (params.operationName === 'IntrospectionQuery') fetched.current = JSON.stringify(opts?.headers ?? {});
    return fetcher(params, opts);
  }, [generation]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <GraphiQL fetcher={current} defaultQuery={defaultQuery} defaultHeaders={'{\n  "Authorization": "Bearer "\n}'}
      onEditHeaders={onEditHeaders} isHeadersEditorEnabled shouldPersistHeaders />
  );
}

// hasToken reports whether headers carry an Authorization token that has
// not expired (as far as the page can tell: a JWT's exp claim).
function hasToken(headers) {
  const value = Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const tok = typeof value === 'string' ? value.replace(/^\s*bearer\b/i, '').trim() : '';
  if (!tok) return false;
  try {
    const { exp } = JSON.parse(atob(tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof exp !== 'number' || exp * 1000 > Date.now();
  } catch {
    return true; // not a JWT the page can read: the server judges it
  }
}

// GraphiQL saves each tab's headers in graphiql:tabState, and the text last
// typed into the Headers tab in graphiql:headers, which it reads as it
// starts (to pick the tab to open) but empties as it mounts, until the next
// edit. So the second reload after pasting a token opened a new tab with
// the default headers, the token left behind in an old tab. savedHeaders
// puts the active tab's headers back where GraphiQL reads them, and
// returns them (null: none saved).
function savedHeaders() {
  let text = localStorage.getItem('graphiql:headers');
  if (!text) {
    try {
      const state = JSON.parse(localStorage.getItem('graphiql:tabState'));
      text = state.tabs[state.activeTabIndex].headers;
    } catch {
      text = null;
    }
    if (typeof text !== 'string' || !text) return null;
    localStorage.setItem('graphiql:headers', text);
  }
  return text;
}

// saveHeaders makes text the active tab's headers, as if typed there.
function saveHeaders(text) {
  localStorage.setItem('graphiql:headers', text);
  try {
    const state = JSON.parse(localStorage.getItem('graphiql:tabState'));
    state.tabs[state.activeTabIndex].headers = text;
    localStorage.setItem('graphiql:tabState', JSON.stringify(state));
  } catch {
    // no tabs yet: GraphiQL opens its first with graphiql:headers
  }
}

// prefillDevToken puts a dev token for "alice" into the Headers tab when
// the saved headers hold none (or an expired one) and the server hands one
// out: only in dev mode (POST /dev/token), which serves loopback clients
// only, so the page does not ask elsewhere. Any failure (404 outside dev
// mode, 403, no answer) leaves the tab as it was, silently, and so do saved
// headers that are not a JSON object.
async function prefillDevToken() {
  const saved = parseHeaders(savedHeaders());
  if (!saved || hasToken(saved) || !['localhost', '127.0.0.1', '[::1]'].includes(location.hostname)) return;
  try {
    const r = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'alice' }),
      signal: AbortSignal.timeout(2000),
    });
    const { token } = r.ok ? await r.json() : {};
    if (token) saveHeaders(JSON.stringify({ ...saved, Authorization: `Bearer ${token}` }, null, 2));
  } catch {
    // no dev token: the Headers tab stays as it was
  }
}

const defaultQuery = `# Welcome to Brook. Put a token in the Headers tab below:
#   {"Authorization": "Bearer <token>"}
# (make run prints one and puts one for alice there; more with:
#  go run . token <user_id>)

{
  me {
    id
    name
    online
  }
}
`;

prefillDevToken().then(() => {
  createRoot(document.getElementById('graphiql')).render(<BrookGraphiQL />);
});
