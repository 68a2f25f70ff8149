import React from 'react';
import { createRoot } from 'react-dom/client';
import { ApolloProvider } from '@apollo/client/react';
import { createApollo, currentSession } from './brook.js';
import App from './App.jsx';
import SignIn from './SignIn.jsx';
import './styles.css';

function Root() {
  const [session, setSession] = React.useState(currentSession);
  const client = React.useMemo(() => (session ? createApollo(session.token) : null), [session]);
  if (!session) return <SignIn onSignedIn={setSession} />;
  return (
    <ApolloProvider client={client}>
      <App session={session} onSignOut={() => { client.stop(); setSession(null); }} />
    </ApolloProvider>
  );
}

createRoot(document.getElementById('root')).render(<Root />);
