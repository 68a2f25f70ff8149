// Sending a file the way Brook wants it: ask for an upload ticket
// (createUpload), send the bytes in one request straight to storage (the
// ticket's URL, method and headers: Brook's own signed URL on local disk, a
// presigned S3 URL otherwise), then completeUpload, which checks what
// arrived. The upload's id is then attached to a message.
import { gql } from '@apollo/client';

export const CREATE_UPLOAD = gql`mutation CreateUpload($filename: String!, $contentType: String!, $size: Int!) {
  createUpload(filename: $filename, contentType: $contentType, size: $size) {
    upload { id status } uploadUrl method headers { name value } expiresAt
  }
}`;
export const COMPLETE_UPLOAD = gql`mutation CompleteUpload($id: ID!) {
  completeUpload(id: $id) { id status mimeType width height }
}`;

// uploadFile sends a File (from an <input type=file>) and returns its
// completed upload. onStage is told 'uploading' and then 'checking'.
export async function uploadFile(client, file, onStage = () => {}) {
  const contentType = file.type || 'application/octet-stream';
  const { data } = await client.mutate({
    mutation: CREATE_UPLOAD,
    variables: { filename: file.name, contentType, size: file.size },
  });
  const ticket = data.createUpload;
  onStage('uploading');
  const headers = Object.fromEntries(ticket.headers.map((h) => [h.name, h.value]));
  const r = await fetch(ticket.uploadUrl, { method: ticket.method, headers, body: file });
  if (!r.ok) {
    const why = (await r.text().catch(() => '')).trim();
    throw new Error(`upload refused (${r.status})${why ? `: ${why}` : ''}`);
  }
  onStage('checking');
  const done = await client.mutate({ mutation: COMPLETE_UPLOAD, variables: { id: ticket.upload.id } });
  return done.data.completeUpload;
}

// sizeText is a file's size for people: 900 B, 12 KB, 3.4 MB.
export function sizeText(n) {
  if (n == null) return '';
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${Math.round(n / 1e3)} KB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}
