import React from 'react';
import { gql } from '@apollo/client';
import { useApolloClient, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { Avatar, ago } from './TimelinePage.jsx';

// A post's comments: a thread per comment, replies nested up to the
// server's FEED_COMMENT_DEPTH, likes on each comment, and new comments and
// replies live through commentAdded. Everything lives in Apollo's cache, so
// a comment that arrives both as a mutation result and as an event is one
// entry (normalized by id), and inserting it twice is checked by id.

const COMMENT = gql`fragment CommentFields on Comment {
  id text createdAt updatedAt replyCount
  user { id name }
  reactionCounts { kind count }
  ownReactions { id kind }
}`;

// One page of comments with two levels of replies under them: with the
// default depth of 3 that is the whole thread, in one request. The page
// sizes keep the query under the server's complexity limit (5,000: a
// comment costs about 50, and every level multiplies by its page size, so
// 5 comments with 3 replies each with 3 replies cost about 3,400). Brook
// pages one comment's replies with comment(id), 5 at a time ("more
// replies", MORE_REPLIES), each with its own replies.
const REPLIES = 3;
// LEVELS is how deep the thread query reads, and so how deep the page
// offers to reply: Brook's default FEED_COMMENT_DEPTH. A server set
// shallower refuses a reply too deep with BAD_USER_INPUT, shown under the
// reply box.
const LEVELS = 3;
const THREAD = gql`fragment Thread on Comment {
  ...CommentFields
  replies(first: ${REPLIES}) {
    edges { cursor node {
      ...CommentFields
      replies(first: ${REPLIES}) {
        edges { cursor node { ...CommentFields } }
        pageInfo { hasNextPage endCursor }
      }
    } }
    pageInfo { hasNextPage endCursor }
  }
} ${COMMENT}`;
const MORE_REPLIES = gql`query MoreReplies($id: ID!, $after: String) {
  comment(id: $id) {
    id replyCount
    replies(first: 5, after: $after) {
      edges { cursor node { ...Thread } }
      pageInfo { hasNextPage endCursor }
    }
  }
} ${THREAD}`;
const COMMENTS = gql`query Comments($id: ID!, $sort: CommentSort!, $after: String) {
  activity(id: $id) {
    id commentCount
    comments(first: 5, after: $after, sort: $sort) {
      edges { cursor node { ...Thread } }
      pageInfo { hasNextPage endCursor }
    }
  }
} ${THREAD}`;
// A new comment (a mutation result or an event) comes with the counts it
// changed, fresh from the server: its parent's replyCount, the post's
// commentCount. Its (empty) reply lists let the cached comment answer the
// thread query without asking the server.
const NEW_COMMENT = gql`fragment NewComment on Comment {
  ...Thread
  parent { id replyCount }
  activity { id commentCount }
} ${THREAD}`;
const COMMENT_ADDED = gql`subscription CommentAdded($id: ID!) {
  commentAdded(activity: $id) { ...NewComment }
} ${NEW_COMMENT}`;
const ADD_COMMENT = gql`mutation AddComment($id: ID!, $text: String!, $parentId: ID) {
  addComment(activity: $id, text: $text, parentId: $parentId) { ...NewComment }
} ${NEW_COMMENT}`;
const UPDATE_COMMENT = gql`mutation UpdateComment($id: ID!, $text: String!) {
  updateComment(id: $id, text: $text) { id text updatedAt }
}`;
const DELETE_COMMENT = gql`mutation DeleteComment($id: ID!) { deleteComment(id: $id) }`;
const COMMENT_COUNT = gql`query CommentCount($id: ID!) { activity(id: $id) { id commentCount } }`;
const LIKE_COMMENT = gql`mutation LikeComment($activity: ID!, $comment: ID!) {
  addReaction(activity: $activity, comment: $comment, kind: "like") {
    id comment { id reactionCounts { kind count } ownReactions { id kind } }
  }
}`;
const UNLIKE = gql`mutation Unlike($id: ID!) { removeReaction(id: $id) }`;

// insertComment puts a comment (a mutation result or a commentAdded event)
// into the cached lists that should show it, once: a top-level comment
// into the activity's comments in every order loaded, a reply into its
// parent's replies. The counts come with the comment (parent.replyCount,
// activity.commentCount), fresh from the server.
export function insertComment(cache, comment) {
  const ref = cache.writeFragment({ fragment: NEW_COMMENT, fragmentName: 'NewComment', data: comment });
  const edge = { __typename: 'CommentEdge', cursor: '', node: ref };
  const has = (conn, readField) => conn.edges.some((e) => readField('id', e.node) === comment.id);
  if (comment.parent) {
    cache.modify({
      id: cache.identify({ __typename: 'Comment', id: comment.parent.id }),
      fields: {
        // Replies read oldest first: a new one goes last, unless more are
        // still to be paged in (then it comes with the last page).
        replies: (conn, { readField }) => (has(conn, readField) || conn.pageInfo.hasNextPage
          ? conn : { ...conn, edges: [...conn.edges, edge] }),
      },
    });
    return;
  }
  cache.modify({
    id: cache.identify({ __typename: 'Activity', id: comment.activity.id }),
    fields: {
      comments(conn, { storeFieldName, readField }) {
        if (has(conn, readField)) return conn;
        if (storeFieldName.includes('OLDEST')) {
          return conn.pageInfo.hasNextPage ? conn : { ...conn, edges: [...conn.edges, edge] };
        }
        // NEWEST: first. TOP (reactions + replies, then newest): first of
        // those that have none yet.
        let at = 0;
        if (storeFieldName.includes('TOP')) {
          const score = (c) => readField('replyCount', c) + (readField('reactionCounts', c) ?? []).reduce((n, r) => n + readField('count', r), 0);
          at = conn.edges.findIndex((e) => score(e.node) === 0);
          if (at < 0) {
            if (conn.pageInfo.hasNextPage) return conn;
            at = conn.edges.length;
          }
        }
        return { ...conn, edges: [...conn.edges.slice(0, at), edge, ...conn.edges.slice(at)] };
      },
    },
  });
}

// dropReaction takes one of the caller's reactions off a cached activity or
// comment: removeReaction answers only true or false.
export function dropReaction(cache, obj, reaction) {
  cache.modify({
    id: cache.identify(obj),
    fields: {
      ownReactions: (list, { readField }) => list.filter((r) => readField('id', r) !== reaction.id),
      reactionCounts: (counts) => counts
        .map((c) => (c.kind === reaction.kind ? { ...c, count: c.count - 1 } : c))
        .filter((c) => c.count > 0),
    },
  });
}

const SORTS = [['NEWEST', 'Newest'], ['OLDEST', 'Oldest'], ['TOP', 'Top']];

// Comments is the open comments section of a post: its order, the box to
// comment, and the threads.
export function Comments({ activity, me }) {
  const [sort, setSort] = React.useState('NEWEST');
  const { data, loading, error, fetchMore } = useQuery(COMMENTS, { variables: { id: activity.id, sort } });
  useSubscription(COMMENT_ADDED, {
    variables: { id: activity.id },
    onData: ({ client, data: event }) => {
      if (event.data) insertComment(client.cache, event.data.commentAdded);
    },
  });
  const page = data?.activity?.comments;
  return (
    <section className="comments" aria-label="comments">
      <div className="row comments-head">
        <CommentForm activity={activity} label="comment text" placeholder="Write a comment…" submit="Comment" />
        <select aria-label="sort comments" value={sort} onChange={(e) => setSort(e.target.value)}>
          {SORTS.map(([value, name]) => <option key={value} value={value}>{name}</option>)}
        </select>
      </div>
      {loading && !page && <p className="muted small">Loading comments…</p>}
      {error && <p className="error small">{error.message}</p>}
      {page?.edges.length === 0 && <p className="muted small">No comments yet.</p>}
      <ol className="thread">
        {page?.edges.map(({ node }) => <CommentItem key={node.id} comment={node} activity={activity} me={me} level={1} />)}
      </ol>
      {page?.pageInfo.hasNextPage && (
        <button className="link small" onClick={() => fetchMore({ variables: { after: page.pageInfo.endCursor } })}>
          More comments
        </button>
      )}
    </section>
  );
}

// CommentItem is one comment with its actions and, nested, its replies;
// parentId is the comment it replies to (none for a comment on the post),
// level its depth in the thread (1 for a comment on the post).
function CommentItem({ comment, activity, me, parentId, level }) {
  const [mode, setMode] = React.useState(null); // 'reply' | 'edit' | 'delete'
  const who = comment.user.name ?? comment.user.id;
  const mine = comment.user.id === me;
  // The author deletes a comment; so does the post's author (moderation).
  const mayDelete = mine || activity.actor.id === me;
  const replies = comment.replies?.edges ?? [];
  const unloaded = comment.replyCount - replies.length;
  return (
    <li className="comment" data-testid="comment" data-id={comment.id}>
      <Avatar name={who} small />
      <div className="grow">
        <div className="bubble">
          <div><strong>{who}</strong> <span className="muted small">· {ago(comment.createdAt)}{comment.updatedAt !== comment.createdAt && ' · edited'}</span></div>
          {mode === 'edit'
            ? <EditForm comment={comment} onDone={() => setMode(null)} />
            : <p className="text">{comment.text}</p>}
        </div>
        <div className="row comment-actions">
          <CommentLike comment={comment} activity={activity} />
          {level < LEVELS && (
            <button className="link small" aria-expanded={mode === 'reply'} onClick={() => setMode(mode === 'reply' ? null : 'reply')}>Reply</button>
          )}
          {mine && <button className="link small" onClick={() => setMode('edit')}>Edit</button>}
          {mayDelete && <button className="link small danger" onClick={() => setMode('delete')}>Delete</button>}
        </div>
        {mode === 'delete' && <DeleteConfirm comment={comment} parentId={parentId} activity={activity} onCancel={() => setMode(null)} />}
        {mode === 'reply' && (
          <CommentForm activity={activity} parent={comment} label="reply text" placeholder={`Reply to ${who}…`}
            submit="Post reply" autoFocus onDone={() => setMode(null)} />
        )}
        {replies.length > 0 && (
          <ol className="thread replies" aria-label={`replies to ${who}`}>
            {replies.map(({ node }) => <CommentItem key={node.id} comment={node} activity={activity} me={me} parentId={comment.id} level={level + 1} />)}
          </ol>
        )}
        {unloaded > 0 && <MoreReplies comment={comment} unloaded={unloaded} />}
      </div>
    </li>
  );
}

// MoreReplies loads the next page of a comment's replies.
function MoreReplies({ comment, unloaded }) {
  const client = useApolloClient();
  const [state, setState] = React.useState({ loading: false, error: null });
  async function more() {
    setState({ loading: true, error: null });
    try {
      await client.query({ query: MORE_REPLIES, fetchPolicy: 'network-only',
        variables: { id: comment.id, after: comment.replies?.pageInfo?.endCursor ?? null } });
      setState({ loading: false, error: null });
    } catch (error) {
      setState({ loading: false, error });
    }
  }
  return (
    <p className="small">
      <button className="link small" disabled={state.loading} onClick={more}>
        {state.loading ? 'Loading…' : `${unloaded} more ${unloaded === 1 ? 'reply' : 'replies'}`}
      </button>
      {state.error && <span className="error small"> {state.error.message}</span>}
    </p>
  );
}

function CommentLike({ comment, activity }) {
  const mine = comment.ownReactions.find((r) => r.kind === 'like');
  const [like] = useMutation(LIKE_COMMENT, { variables: { activity: activity.id, comment: comment.id } });
  const [unlike] = useMutation(UNLIKE, { variables: { id: mine?.id }, update: (cache) => dropReaction(cache, comment, mine) });
  const likes = comment.reactionCounts.find((c) => c.kind === 'like')?.count ?? 0;
  return (
    <button className={`like small ${mine ? 'on' : ''}`} aria-pressed={!!mine} aria-label="like comment"
      onClick={() => (mine ? unlike() : like())}>♥ {likes}</button>
  );
}

// CommentForm writes a comment on the post, or with parent a reply to it.
function CommentForm({ activity, parent, label, placeholder, submit, autoFocus, onDone }) {
  const [text, setText] = React.useState('');
  const [add, { loading, error }] = useMutation(ADD_COMMENT, {
    update: (cache, { data }) => insertComment(cache, data.addComment),
  });
  async function send(e) {
    e.preventDefault();
    await add({ variables: { id: activity.id, text: text.trim(), parentId: parent?.id } });
    setText('');
    onDone?.();
  }
  return (
    <form className="row comment-form grow" onSubmit={(e) => send(e).catch(() => {})}>
      <input value={text} placeholder={placeholder} aria-label={label} maxLength={10000} autoFocus={autoFocus}
        onChange={(e) => setText(e.target.value)} />
      <button type="submit" disabled={!text.trim() || loading}>{submit}</button>
      {error && <p className="error small" role="alert">{error.message}</p>}
    </form>
  );
}

function EditForm({ comment, onDone }) {
  const [text, setText] = React.useState(comment.text);
  const [save, { loading, error }] = useMutation(UPDATE_COMMENT);
  async function send(e) {
    e.preventDefault();
    await save({ variables: { id: comment.id, text: text.trim() } });
    onDone();
  }
  return (
    <form className="row comment-form" onSubmit={(e) => send(e).catch(() => {})}>
      <input value={text} aria-label="edit comment" maxLength={10000} autoFocus onChange={(e) => setText(e.target.value)} />
      <button type="submit" disabled={!text.trim() || loading}>Save</button>
      <button type="button" className="ghost" onClick={onDone}>Cancel</button>
      {error && <p className="error small" role="alert">{error.message}</p>}
    </form>
  );
}

// DeleteConfirm asks before deleting: a comment goes with all its replies.
function DeleteConfirm({ comment, parentId, activity, onCancel }) {
  const client = useApolloClient();
  const [remove, { loading, error }] = useMutation(DELETE_COMMENT, {
    variables: { id: comment.id },
    update(cache, { data }) {
      if (!data.deleteComment) return;
      const drop = (conn, { readField }) => ({ ...conn, edges: conn.edges.filter((e) => readField('id', e.node) !== comment.id) });
      if (parentId) {
        cache.modify({
          id: cache.identify({ __typename: 'Comment', id: parentId }),
          fields: { replies: drop, replyCount: (n) => Math.max(0, n - 1) },
        });
      } else {
        cache.modify({ id: cache.identify(activity), fields: { comments: drop } });
      }
    },
  });
  async function confirm() {
    await remove();
    // Its replies went with it: ask the server for the post's new count.
    await client.query({ query: COMMENT_COUNT, variables: { id: activity.id }, fetchPolicy: 'network-only' });
  }
  const n = comment.replyCount;
  return (
    <div className="row banner confirm small" data-testid="confirm-delete">
      <span className="grow">Delete this comment{n > 0 && ` and its ${n} ${n === 1 ? 'reply' : 'replies'}`}?</span>
      <button className="danger" disabled={loading} onClick={() => confirm().catch(() => {})}>Delete comment</button>
      <button className="ghost" onClick={onCancel}>Cancel</button>
      {error && <p className="error small" role="alert">{error.message}</p>}
    </div>
  );
}
