import React from 'react';
import { problem } from './chatApi.js';
import { sizeText } from './uploads.js';

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
// and says why, with Brook's error code. A file picked with the paperclip
// is uploaded at once (onUpload), and sent with the message as its
// attachment; a message of only a file says the file's name.
export function Composer({ onSend, onTyping, onUpload, quoting, onCancelQuote }) {
  const [text, setText] = React.useState('');
  const [failed, setFailed] = React.useState(null);
  // file: { name, size, stage: uploading | checking | ready | failed, upload, error }
  const [file, setFile] = React.useState(null);
  const picker = React.useRef(null);
  async function pick(e) {
    const f = e.target.files?.[0];
    e.target.value = ''; // picking the same file again is a new pick
    if (!f) return;
    const mine = { name: f.name, size: f.size, stage: 'uploading' };
    setFile(mine);
    const still = (change) => setFile((cur) => (cur?.name === mine.name && cur.stage !== 'dropped' ? { ...cur, ...change } : cur));
    try {
      const upload = await onUpload(f, (stage) => still({ stage }));
      still({ stage: 'ready', upload });
    } catch (err) {
      still({ stage: 'failed', error: problem(err) });
    }
  }
  const ready = file?.stage === 'ready';
  const busy = file && !ready && file.stage !== 'failed';
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
    const typed = text.trim();
    const sent = ready ? file : null;
    setText('');
    setFailed(null);
    if (sent) setFile(null);
    if (lastTyping.current) { lastTyping.current = 0; onTyping(false); }
    try {
      await onSend(typed || sent.name, sent ? [{ uploadId: sent.upload.id }] : undefined);
    } catch (err) {
      setText(typed);
      if (sent) setFile(sent);
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
      {file && (
        <div className={`row attaching ${file.stage}`} data-testid="attaching" data-stage={file.stage}>
          <span className="grow small">
            📎 {file.name} <span className="muted">{sizeText(file.size)}</span>{' '}
            {file.stage === 'failed'
              ? <span className="error" role="alert" data-testid="upload-error">not uploaded: {file.error}</span>
              : <span className="muted">{{ uploading: 'uploading…', checking: 'checking…', ready: 'ready to send' }[file.stage]}</span>}
          </span>
          <button type="button" className="link" aria-label="drop attachment" onClick={() => setFile(null)}>×</button>
        </div>
      )}
      <form onSubmit={submit} className="row">
        <input type="file" ref={picker} onChange={pick} hidden data-testid="attach-input"
          accept="image/jpeg,image/png,image/gif,image/webp,application/pdf,text/plain,application/zip" />
        <button type="button" className="ghost attach" aria-label="attach a file" title="attach a file"
          disabled={!onUpload || busy} onClick={() => picker.current?.click()}><Paperclip /></button>
        <input placeholder={quoting ? 'Reply to the quote' : 'Write a message'} value={text} onChange={change} aria-label="message" ref={box} />
        <button type="submit" disabled={busy || !(text.trim() || ready)}>Send</button>
      </form>
    </div>
  );
}

// Paperclip is the attach button's icon, drawn rather than an emoji, which
// not every system has a font for.
function Paperclip() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2"
      strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48" />
    </svg>
  );
}
