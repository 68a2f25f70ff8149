import React from 'react';
import { gql } from '@apollo/client';
import { useQuery } from '@apollo/client/react';
import { usePath } from './router.js';
import { signOut } from './brook.js';
import TimelinePage from './TimelinePage.jsx';
import ChatPage, { useUnreadTotal } from './ChatPage.jsx';
import CallPage from './CallPage.jsx';
import { Ringer } from './Ringer.jsx';

const ME = gql`query Me { me { id name } }`;

// The pages, by the first part of the path under /app/.
const pages = [
  { path: 'timeline', title: 'Timeline', Page: TimelinePage },
  { path: 'chat', title: 'Chat', Page: ChatPage },
  { path: 'call', title: 'Call', Page: CallPage },
];

export default function App({ session, onSignOut }) {
  const [path, go] = usePath();
  const { data } = useQuery(ME); // also creates the user on first sign-in
  const unread = useUnreadTotal();
  const current = pages.find((p) => path.split('/')[0] === p.path) ?? pages[0];
  return (
    <div className="app">
      <header>
        <strong className="logo">Brook</strong>
        <nav>
          {pages.map((p) => (
            <a key={p.path} href={`/app/${p.path}`} className={p === current ? 'active' : ''}
              data-unread={p.path === 'chat' ? unread : undefined}
              onClick={(e) => { e.preventDefault(); go(p.path); }}>
              {p.title}
              {p.path === 'chat' && unread > 0 && <span className="badge" data-testid="unread-total">{unread}</span>}
            </a>
          ))}
        </nav>
        <span className="me">{data?.me.name ?? session.userId}</span>
        <button className="link" onClick={() => { signOut(); onSignOut(); }}>Sign out</button>
      </header>
      {/* Ringer rings on every page; accepting a call opens it on the call page. */}
      <Ringer session={session} onAccepted={(callId) => go(`call/${callId}`)}>
        <main>
          <current.Page session={session} path={path} go={go} />
        </main>
      </Ringer>
    </div>
  );
}
