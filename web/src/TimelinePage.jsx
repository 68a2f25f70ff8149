import React from 'react';
import { gql } from '@apollo/client';
import { useMutation, useQuery } from '@apollo/client/react';
import { Comments, dropReaction } from './Comments.jsx';

// Your timeline: what the people you follow post, live. You post to your
// own `user:` feed; Brook's workers copy each post into every follower's
// `timeline:` feed and feedUpdated tells the open pages.

const ACTIVITY = gql`fragment ActivityFields on Activity {
  id verb object time
  actor { id name }
  reactionCounts { kind count }
  ownReactions { id kind }
  commentCount
}`;
const TIMELINE = gql`query Timeline($feed: ID!, $after: String) {
  feed(id: $feed) {
    id
    activities(first: 10, after: $after) {
      edges { cursor node { ...ActivityFields } }
      pageInfo { hasNextPage endCursor }
    }
  }
} ${ACTIVITY}`;
// updated brings the new counts of posts liked or commented on by anyone:
// Apollo's cache merges them into the cached activities by id, so every
// view of a post shows them. (ownReactions stay as the page's own
// mutations left them.)
const FEED_UPDATED = gql`subscription FeedUpdated($feed: ID!) {
  feedUpdated(feed: $feed) {
    added { ...ActivityFields }
    removed
    updated { id reactionCounts { kind count } commentCount }
  }
} ${ACTIVITY}`;
const POST = gql`mutation Post($feed: ID!, $text: String!) {
  addActivity(feed: $feed, input: { verb: "post", object: $text }) { id }
}`;
const LIKE = gql`mutation Like($id: ID!) {
  addReaction(activity: $id, kind: "like") { id activity { id reactionCounts { kind count } ownReactions { id kind } } }
}`;
const UNLIKE = gql`mutation Unlike($id: ID!) { removeReaction(id: $id) }`;
const FOLLOWING = gql`query Following($feed: ID!) {
  feed(id: $feed) { id following(first: 50) { edges { node { id owner { id name } } } } }
}`;
const FOLLOW = gql`mutation Follow($source: ID!, $target: ID!) { follow(source: $source, target: $target) { createdAt } }`;
const UNFOLLOW = gql`mutation Unfollow($source: ID!, $target: ID!) { unfollow(source: $source, target: $target) }`;

export default function TimelinePage({ session }) {
  const me = session.userId;
  const feed = `timeline:${me}`;
  const { data, loading, fetchMore, subscribeToMore } = useQuery(TIMELINE, { variables: { feed } });
  const [post] = useMutation(POST);
  const [follow] = useMutation(FOLLOW, { refetchQueries: [TIMELINE, FOLLOWING] });
  const [followSelf] = useMutation(FOLLOW, { variables: { source: feed, target: `user:${me}` } });

  // Your timeline follows your own feed, so your posts show in it too
  // (following again changes nothing).
  React.useEffect(() => { followSelf(); }, [feed]);

  // Live: put added activities on top, drop removed ones (updated ones
  // are merged into the cache by id, without help).
  React.useEffect(() => subscribeToMore({
    document: FEED_UPDATED,
    variables: { feed },
    updateQuery: (prev, { subscriptionData }) => {
      if (!prev?.feed) return undefined; // not loaded yet: the query will include it
      const { added, removed } = subscriptionData.data.feedUpdated;
      const conn = prev.feed.activities;
      const known = new Set(conn.edges.map((e) => e.node.id));
      const fresh = added.filter((a) => !known.has(a.id)).map((node) => ({ __typename: 'ActivityEdge', cursor: '', node }));
      const edges = [...fresh, ...conn.edges].filter((e) => !removed.includes(e.node.id));
      return { ...prev, feed: { ...prev.feed, activities: { ...conn, edges } } };
    },
  }), [feed, subscribeToMore]);

  const page = data?.feed.activities;
  return (
    <section className="timeline">
      <div className="column">
        <PostBox onPost={(text) => post({ variables: { feed: `user:${me}`, text } })} />
        {loading && <p className="muted">Loading…</p>}
        {page?.edges.length === 0 && <p className="muted card">Nothing yet. Follow someone, or post something.</p>}
        <ol className="activities">
          {page?.edges.map(({ node }) => <ActivityCard key={node.id} activity={node} me={me} />)}
        </ol>
        {page?.pageInfo.hasNextPage && (
          <button className="ghost wide" onClick={() => fetchMore({ variables: { after: page.pageInfo.endCursor } })}>
            Load more
          </button>
        )}
      </div>
      <People me={me} feed={feed} follow={follow} />
    </section>
  );
}

function PostBox({ onPost }) {
  const [text, setText] = React.useState('');
  async function submit(e) {
    e.preventDefault();
    await onPost(text.trim());
    setText('');
  }
  return (
    <form onSubmit={submit} className="card post-box">
      <textarea rows={2} placeholder="What's happening?" value={text} onChange={(e) => setText(e.target.value)} aria-label="post text" />
      <button type="submit" disabled={!text.trim()}>Post</button>
    </form>
  );
}

function ActivityCard({ activity, me }) {
  const [open, setOpen] = React.useState(false);
  const [like] = useMutation(LIKE, { variables: { id: activity.id } });
  const mine = activity.ownReactions.find((r) => r.kind === 'like');
  const [unlike] = useMutation(UNLIKE, { variables: { id: mine?.id }, update: (cache) => dropReaction(cache, activity, mine) });
  const likes = activity.reactionCounts.find((c) => c.kind === 'like')?.count ?? 0;
  const comments = activity.commentCount;
  const who = activity.actor.name ?? activity.actor.id;
  return (
    <li className="card activity" data-testid="activity">
      <Avatar name={who} />
      <div className="grow">
        <div><strong>{who}</strong> <span className="muted">· {ago(activity.time)}</span></div>
        <p className="text">{activity.object}</p>
        <div className="row">
          <button className={`like ${mine ? 'on' : ''}`} aria-pressed={!!mine} aria-label="like"
            onClick={() => (mine ? unlike() : like())}>♥ {likes}</button>
          <button className="comments-toggle" aria-expanded={open} data-testid="comment-count" onClick={() => setOpen(!open)}>
            {comments} {comments === 1 ? 'comment' : 'comments'}
          </button>
        </div>
        {open && <Comments activity={activity} me={me} />}
      </div>
    </li>
  );
}

function People({ me, feed, follow }) {
  const [who, setWho] = React.useState('');
  const { data } = useQuery(FOLLOWING, { variables: { feed } });
  const [unfollow] = useMutation(UNFOLLOW, { refetchQueries: [TIMELINE, FOLLOWING] });
  const people = (data?.feed.following.edges ?? []).map((e) => e.node.owner).filter((u) => u.id !== me);
  async function submit(e) {
    e.preventDefault();
    await follow({ variables: { source: feed, target: `user:${who.trim()}` } });
    setWho('');
  }
  return (
    <aside className="card people">
      <h3>Following</h3>
      <form onSubmit={submit} className="row">
        <input placeholder="user id, e.g. bob" value={who} onChange={(e) => setWho(e.target.value)} aria-label="follow user" />
        <button type="submit" disabled={!who.trim()}>Follow</button>
      </form>
      <ul>
        {people.map((u) => (
          <li key={u.id} className="row">
            <Avatar name={u.name ?? u.id} small />
            <span className="grow">{u.name ?? u.id}</span>
            <button className="ghost" onClick={() => unfollow({ variables: { source: feed, target: `user:${u.id}` } })}>Unfollow</button>
          </li>
        ))}
      </ul>
      {people.length === 0 && <p className="muted">No one yet.</p>}
    </aside>
  );
}

export function Avatar({ name, small }) {
  const hue = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 0);
  return <span className={`avatar ${small ? 'small' : ''}`} style={{ background: `hsl(${hue} 60% 55%)` }}>{name[0]?.toUpperCase()}</span>;
}

export function ago(time) {
  const s = Math.max(0, (Date.now() - new Date(time)) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return new Date(time).toLocaleDateString();
}
