// How Apollo's normalized cache stores Brook's lists. Every Brook object
// with an `id` is normalized by its type and id (Activity:…, Channel:…), so a
// mutation or subscription that returns one updates every view of it.
import { relayStylePagination } from '@apollo/client/utilities';

export const typePolicies = {
  Query: {
    fields: {
      // Channel lists are kept apart by filter and sort; `fetchMore({
      // variables: { after: endCursor } })` appends the next page (the
      // room browser), and a read without `after` replaces the list.
      channels: {
        keyArgs: ['filter', 'sort'],
        merge(existing, incoming, { args }) {
          if (!existing || !args?.after) return incoming;
          return { ...incoming, edges: [...existing.edges, ...incoming.edges] };
        },
      },
    },
  },
  Feed: {
    fields: {
      // A timeline, newest first: `fetchMore({ variables: { after: endCursor } })`
      // appends the next (older) page to the same list.
      activities: relayStylePagination(),
    },
  },
  Activity: {
    fields: {
      // A post's comments, one list per order (NEWEST, OLDEST, TOP): "More
      // comments" (`after: endCursor`) appends the next page; a read
      // without `after` replaces the list. Live comments are put in by
      // Comments.jsx (insertComment).
      comments: {
        keyArgs: ['sort'],
        merge(existing, incoming, { args }) {
          if (!existing || !args?.after) return incoming;
          return { ...incoming, edges: [...existing.edges, ...incoming.edges] };
        },
      },
    },
  },
  Comment: {
    fields: {
      // A comment's replies: the thread query's first page (a newer read
      // replaces it), then "more replies" (`comment(id)` with `after:
      // endCursor`) appends the next page, less any reply already shown
      // live (insertComment).
      replies: {
        keyArgs: false,
        merge(existing, incoming, { args, readField }) {
          if (!existing || !args?.after) return incoming;
          const shown = new Set(existing.edges.map((e) => readField('id', e.node)));
          const fresh = incoming.edges.filter((e) => !shown.has(readField('id', e.node)));
          return { ...incoming, edges: [...existing.edges, ...fresh] };
        },
      },
    },
  },
  Channel: {
    fields: {
      // Chat history pages backwards: `before: endCursor` (the page's oldest
      // message) fetches older messages, which go in front. A write without
      // `before` (the first page, or a live message added with updateQuery)
      // replaces the list.
      messages: {
        keyArgs: false,
        merge(existing, incoming, { args }) {
          if (!existing || !args?.before) return incoming;
          return { ...incoming, edges: [...incoming.edges, ...existing.edges] };
        },
      },
    },
  },
};
