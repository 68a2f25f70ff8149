import React from 'react';
import { problem } from './chatApi.js';

// useTypists lists who else is typing in a channel, from its typing.start
// and typing.stop events (handed to the returned function); a typist that
// goes quiet for 6 s is dropped.
export function useTypists(me) {
  const [typists, setTypists] = React.useState({});
  const timers = React.useRef({});
  const drop = (user) => {
    clearTimeout(timers.current[user]);
    setTypists(({ [user]: _gone, ...rest }) => rest);
  };
  function onEvent({ type, user }) {
    if (!user || user.id === me) return;
    if (type === 'typing.start') {
      setTypists((t) => ({ ...t, [user.id]: user.name ?? user.id }));
      clearTimeout(timers.current[user.id]);
      timers.current[user.id] = setTimeout(() => drop(user.id), 6000);
    } else if (type === 'typing.stop' || type === 'message.new') {
      drop(user.id);
    }
  }
  React.useEffect(() => () => Object.values(timers.current).forEach(clearTimeout), []);
  return [Object.values(typists), onEvent];
}

// Composer sends typing.start at most every 3 s while you type, and
// typing.stop when you send or clear the box. A quoted message shows above
// the box until it is sent or dropped. A send that fails keeps the text
// and says why, with Brook's error code.
export function Composer({ onSend, onTyping, quoting, onCancelQuote }) {
  const [text, setText] = React.useState('');
  const [failed, setFailed] = React.useState(null);
  const lastTyping = React.useRef(0);
  const box = React.useRef(null);
  React.useEffect(() => { if (quoting) box.current?.focus(); }, [quoting]);
  function change(e) {
    setText(e.target.value);
    if (e.target.value && Date.now() - lastTyping.current > 3000) {
      lastTyping.current = Date.now();
      onTyping(true);
    } else if (!e.target.value && lastTyping.current) {
      lastTyping.current = 0;
      onTyping(false);
    }
  }
  async function submit(e) {
    e.preventDefault();
    const body = text.trim();
    setText('');
    setFailed(null);
    if (lastTyping.current) { lastTyping.current = 0; onTyping(false); }
    try {
      await onSend(body);
    } catch (err) {
      setText(body);
      setFailed(problem(err));
    }
  }
  return (
    <div className="composer">
      {quoting && (
        <div className="row quoting" data-testid="composer-quote">
          <span className="quote grow"><span className="who">Quoting {quoting.user.name ?? quoting.user.id}</span>{quoting.text}</span>
          <button type="button" className="link" aria-label="cancel quote" onClick={onCancelQuote}>×</button>
        </div>
      )}
      {failed && <p className="error" role="alert" data-testid="send-error">Not sent: {failed}</p>}
      <form onSubmit={submit} className="row">
        <input placeholder={quoting ? 'Reply to the quote' : 'Write a message'} value={text} onChange={change} aria-label="message" ref={box} />
        <button type="submit" disabled={!text.trim()}>Send</button>
      </form>
    </div>
  );
}
