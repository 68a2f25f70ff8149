import React from 'react';
import { Avatar } from './TimelinePage.jsx';
import { Menu, MenuItem } from './Menu.jsx';
import { nameOf } from './chatApi.js';
import { Attachments } from './Attachments.jsx';

// Message is one message of the history: who wrote it, the message it
// quotes above its text, whether it is pinned or reported, and its
// actions. An author the reader mutes is tagged muted, a banned one banned.
export function Message({ m, me, banned, muted, reported, children }) {
  const name = nameOf(m.user);
  return (
    <div className={`message ${m.user.id === me ? 'mine' : ''}`} data-testid="message" data-id={m.id}>
      {m.user.id !== me && <Avatar name={name} small />}
      <p>
        <span className="muted who">
          {name}
          {banned && <span className="tag" data-testid="banned">banned</span>}
          {muted && <span className="tag quiet" data-testid="author-muted" title="you mute this person">muted</span>}
        </span>
        {m.quotedMessage && (
          <span className="quote" data-testid="quote">
            <span className="who">{nameOf(m.quotedMessage.user)}</span>{m.quotedMessage.text}
          </span>
        )}
        <span className="text">{m.type === 'deleted' ? <em className="deleted">message deleted</em> : m.text}</span>
        {m.type !== 'deleted' && <Attachments list={m.attachments} />}
        {m.pinnedAt && <span className="pinned-mark" data-testid="pinned-mark" title="pinned">pinned</span>}
        {reported && <span className="pinned-mark" data-testid="reported">reported to the moderators</span>}
      </p>
      <span className="actions">{children}</span>
    </div>
  );
}

// MessageMenu is a message's "…" menu: mark the room unread from it (for
// members), and, on someone else's message, report it and mute or block
// its author. authorMute is the reader's mute of the author: undefined for
// none, { until } for one (until null: for good).
export function MessageMenu({ m, me, joined, authorMute, onMarkUnread, onReport, onMuteAuthor, onUnmuteAuthor, onBlockAuthor }) {
  const other = m.user.id !== me;
  const name = nameOf(m.user);
  if (!joined && !other) return null;
  return (
    <Menu label="…" title="more actions">
      {joined && <MenuItem onSelect={onMarkUnread}>Mark unread from here</MenuItem>}
      {other && m.type !== 'deleted' && <MenuItem onSelect={onReport}>Report…</MenuItem>}
      {other && (authorMute
        ? <MenuItem onSelect={onUnmuteAuthor}>Unmute {name}</MenuItem>
        : (
          <>
            <MenuItem onSelect={() => onMuteAuthor(true)}>Mute {name} for 1 hour</MenuItem>
            <MenuItem onSelect={() => onMuteAuthor(false)}>Mute {name}</MenuItem>
          </>
        ))}
      {other && <MenuItem danger onSelect={onBlockAuthor}>Block {name}</MenuItem>}
    </Menu>
  );
}

// ReportForm asks why a message is reported (optional, at most 500
// characters) before flagging it for the room's moderators.
export function ReportForm({ m, onSend, onCancel }) {
  const [reason, setReason] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const box = React.useRef(null);
  React.useEffect(() => { box.current?.focus(); }, []);
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    try {
      await onSend(reason.trim() || null);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="row report" onSubmit={submit} data-testid="report-form">
      <span className="small muted">Report {nameOf(m.user)}’s message:</span>
      <input ref={box} value={reason} maxLength={500} placeholder="what is wrong with it (optional)"
        aria-label="report reason" onChange={(e) => setReason(e.target.value)} />
      <button type="submit" disabled={busy}>Report</button>
      <button type="button" className="ghost" onClick={onCancel}>Cancel</button>
    </form>
  );
}
