// A twelve-line router: the path under /app/ is the page.
import React from 'react';

export function usePath() {
  const [path, setPath] = React.useState(() => location.pathname.replace(/^\/app\/?/, ''));
  React.useEffect(() => {
    const onPop = () => setPath(location.pathname.replace(/^\/app\/?/, ''));
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const go = (to) => { history.pushState(null, '', `/app/${to}`); setPath(to); };
  return [path, go];
}
