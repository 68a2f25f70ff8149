// GraphiQL served by Brook itself at /, so it works without a CDN.
// Paste {"Authorization": "Bearer <token>"} into the Headers tab: queries and
// mutations send it over HTTP, subscriptions in the WebSocket's
// connection_init payload.
import React from 'react';
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

createRoot(document.getElementById('graphiql')).render(
  <GraphiQL fetcher={fetcher} defaultQuery={defaultQuery} defaultHeaders={'{\n  "Authorization": "Bearer "\n}'} isHeadersEditorEnabled shouldPersistHeaders />,
);
