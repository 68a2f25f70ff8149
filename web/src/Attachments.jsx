import React from 'react';
import { sizeText } from './uploads.js';

// Attachments shows what a message carries: an image as its thumbnail
// (the full image until the thumbnail is made; a click opens the full one),
// a file as a link with its name and size, a link preview as a card. URLs
// of uploaded files are signed and expire, so they are never kept: the
// message is read again for fresh ones.
export function Attachments({ list }) {
  if (!list?.length) return null;
  return (
    <span className="attachments">
      {list.map((a, i) => <Attachment key={a.uploadId ?? `${a.url}#${i}`} a={a} />)}
    </span>
  );
}

function Attachment({ a }) {
  if (a.type === 'IMAGE') {
    return (
      <a className="attachment image" href={a.url} target="_blank" rel="noreferrer" data-testid="attachment-image">
        <img src={a.thumbUrl ?? a.url} alt={a.title ?? 'image'} data-thumb={a.thumbUrl ? 'yes' : 'no'}
          width={a.thumbUrl ? undefined : fitWidth(a)} loading="lazy" />
      </a>
    );
  }
  if (a.type === 'LINK') {
    return (
      <a className="attachment link-card" href={a.url} target="_blank" rel="noreferrer" data-testid="attachment-link">
        {a.imageUrl && <img src={a.imageUrl} alt="" />}
        <span>
          <strong>{a.title ?? a.url}</strong>
          {a.description && <span className="small">{a.description}</span>}
        </span>
      </a>
    );
  }
  return (
    <a className="attachment file" href={a.url} target="_blank" rel="noreferrer" data-testid="attachment-file">
      <span aria-hidden="true">📎</span> {a.title ?? fileName(a.url)} <span className="small">{sizeText(a.size)}</span>
    </a>
  );
}

// fitWidth keeps a full-size image (no thumbnail yet) within the thumbnail's
// 400-pixel box.
function fitWidth(a) {
  if (!a.width || !a.height) return 240;
  return Math.round(Math.min(a.width, 400, (a.width * 400) / a.height));
}

function fileName(url) {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop()) || url;
  } catch {
    return url;
  }
}
