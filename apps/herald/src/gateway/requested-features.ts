/**
 * The optional features a client asks for in its connect request: `?features=inbox` (comma-separated) on the
 * `/ws` URL or on `GET /v1/stream`. Names the server does not know are ignored, so a newer client can ask
 * an older server; the welcome's `features` says what this connection got.
 */
export function requestedFeatures(value: unknown): ReadonlySet<string> {
  const raw = Array.isArray(value) ? value.join(',') : typeof value === 'string' ? value : '';
  return new Set(
    raw
      .slice(0, 256)
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== ''),
  );
}

/** The `features` query parameter of a request URL (`/ws?features=inbox`), as `requestedFeatures` reads it. */
export function featuresOfUrl(url: string | undefined): ReadonlySet<string> {
  const query = url?.indexOf('?') ?? -1;
  if (query < 0) return new Set();
  return requestedFeatures(new URLSearchParams(url!.slice(query + 1)).getAll('features'));
}
