// GraphiQL served by Brook itself at /, so it works without a CDN.
// Paste {"Authorization": "Bearer <token>"} into the Headers tab: queries and
// mutations send it over HTTP, subscriptions in the WebSocket's
// connection_init payload. The schema is fetched again whenever the Headers
// tab changes.
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

const defaultQuery = `# Welcome to Brook. Put a token in the Headers tab below:
#   {"Authorization": "Bearer <token>"}
# (make run prints one; more with: go run . token <user_id>)

{
  me {
    id
    name
    online
  }
}
`;

createRoot(document.getElementById('graphiql')).render(<BrookGraphiQL />);
