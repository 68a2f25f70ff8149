import React from 'react';
import { signIn } from './brook.js';

// SignIn picks who you are. Open a second window (or a private one) to be
// someone else at the same time.
export default function SignIn({ onSignedIn }) {
  const [userId, setUserId] = React.useState('');
  const [error, setError] = React.useState(null);
  async function submit(e) {
    e.preventDefault();
    try {
      onSignedIn(await signIn(userId.trim()));
    } catch (err) {
      setError(err.message);
    }
  }
  return (
    <main className="signin">
      <form onSubmit={submit} className="card">
        <h1>Brook</h1>
        <p className="muted">Feeds, chat and calls on one GraphQL API. Sign in as anyone.</p>
        <input autoFocus placeholder="user id, e.g. alice" value={userId} onChange={(e) => setUserId(e.target.value)} aria-label="user id" />
        <button type="submit" disabled={!userId.trim()}>Sign in</button>
        {error && <p className="error">{error}</p>}
      </form>
    </main>
  );
}
