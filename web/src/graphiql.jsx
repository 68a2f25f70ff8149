// GraphiQL served by Brook itself at /, so it works without a CDN.
// Paste {"Authorization": "Bearer <token>"} into the Headers tab: queries and
// mutations send it over HTTP, subscriptions in the WebSocket's
// connection_init payload.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';

const http = `${location.origin}/query`;
const fetcher = createGraphiQLFetcher({
  url: http,
  subscriptionUrl: http.replace(/^http/, 'ws'),
});

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
