import React from 'react';

// Menu is a button that opens a short list of actions (role menu, each a
// menuitem). The list is placed next to the button in the window (fixed),
// so a scrolling box, like a room's history, does not cut it off; it opens
// upwards when there is no room below. Choosing an item, clicking
// elsewhere, Escape or scrolling closes it.
export function Menu({ label, title, className = 'link small', children }) {
  const [at, setAt] = React.useState(null);
  const button = React.useRef(null);
  const list = React.useRef(null);
  React.useEffect(() => {
    if (!at) return undefined;
    const close = () => setAt(null);
    const away = (e) => { if (!list.current?.contains(e.target) && !button.current?.contains(e.target)) close(); };
    const key = (e) => { if (e.key === 'Escape') { close(); button.current?.focus(); } };
    document.addEventListener('mousedown', away);
    document.addEventListener('keydown', key);
    addEventListener('scroll', close, true);
    addEventListener('resize', close);
    list.current?.querySelector('[role=menuitem]')?.focus({ preventScroll: true });
    return () => {
      document.removeEventListener('mousedown', away);
      document.removeEventListener('keydown', key);
      removeEventListener('scroll', close, true);
      removeEventListener('resize', close);
    };
  }, [at]);
  function toggle() {
    if (at) { setAt(null); return; }
    const r = button.current.getBoundingClientRect();
    const right = Math.max(8, innerWidth - r.right);
    setAt(innerHeight - r.bottom > 220 ? { top: r.bottom + 4, right } : { bottom: innerHeight - r.top + 4, right });
  }
  return (
    <>
      <button type="button" ref={button} className={className} aria-label={title} title={title}
        aria-haspopup="menu" aria-expanded={!!at} onClick={toggle}>{label}</button>
      {at && (
        <ul role="menu" aria-label={title} className="menu" style={at} ref={list} onClick={() => setAt(null)}>
          {children}
        </ul>
      )}
    </>
  );
}

// MenuItem is one action of a Menu.
export function MenuItem({ onSelect, danger, children }) {
  return (
    <li role="none">
      <button type="button" role="menuitem" className={danger ? 'danger' : ''} onClick={onSelect}>{children}</button>
    </li>
  );
}
