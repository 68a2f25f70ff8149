import React from 'react';
import { Menu, MenuItem } from './Menu.jsx';
import { inAnHour, untilText } from './chatApi.js';

// RoomHead is a room's title bar: who is in it and as what, whether the
// caller mutes it, and the room's actions: mute (for an hour, or until
// unmuted) and unmute, join, accept an invitation or leave, and in the "…"
// menu hide the room from one's list and, for owners, clear its history or
// delete it, each after a confirmation.
export function RoomHead({ id, channel, info, on }) {
  const [confirming, setConfirming] = React.useState(null);
  const membership = info?.channel.membership;
  const joined = membership?.status === 'MEMBER';
  const owner = joined && membership.role === 'owner';
  const name = channel?.name ?? id;
  const count = info?.channel.memberCount;
  const ask = {
    truncate: { text: `Clear the history of ${name} for everyone? Every message is deleted, for good.`, button: 'Clear history', run: on.truncate },
    delete: { text: `Delete ${name} for everyone? Its messages go too, and its id cannot be used again.`, button: 'Delete room', run: on.delete },
  }[confirming];
  return (
    <>
      <div className="row room-head">
        <div className="grow title">
          <h3>{name}</h3>
          {info && (
            <span className="muted small" data-testid="room-info">
              {count} {count === 1 ? 'member' : 'members'}
              {channel.joinPolicy === 'OPEN' && ' · open'}
              {joined && membership.role !== 'member' && ` · you are ${membership.role === 'owner' ? 'an owner' : 'a moderator'}`}
              {joined && membership.muted && (membership.mutedUntil ? ` · muted until ${untilText(membership.mutedUntil)}` : ' · muted')}
            </span>
          )}
        </div>
        {joined && (membership.muted
          ? <button className="ghost" onClick={on.unmute} title="Count its messages in your total and be notified again">Unmute</button>
          : (
            <Menu label="Mute" title="Mute the room" className="ghost">
              <MenuItem onSelect={() => on.mute(inAnHour())}>For 1 hour</MenuItem>
              <MenuItem onSelect={() => on.mute(null)}>Until I unmute it</MenuItem>
            </Menu>
          ))}
        {joined && <button className="ghost" onClick={on.leave}>Leave</button>}
        {info && membership?.status === 'INVITED' && <button onClick={on.accept}>Accept invitation</button>}
        {info && !membership && channel.joinPolicy === 'OPEN' && <button onClick={on.join}>Join</button>}
        {joined && (
          <Menu label="…" title="room actions" className="ghost">
            <MenuItem onSelect={on.hide}>Hide from my list</MenuItem>
            {owner && <MenuItem onSelect={() => setConfirming('truncate')}>Clear history…</MenuItem>}
            {owner && <MenuItem danger onSelect={() => setConfirming('delete')}>Delete room…</MenuItem>}
          </Menu>
        )}
      </div>
      {ask && (
        <div className="banner row confirm" role="alertdialog" aria-label={ask.button} data-testid="confirm">
          <span className="grow">{ask.text}</span>
          <button className="danger" onClick={() => { setConfirming(null); ask.run(); }}>{ask.button}</button>
          <button className="ghost" onClick={() => setConfirming(null)}>Cancel</button>
        </div>
      )}
    </>
  );
}
