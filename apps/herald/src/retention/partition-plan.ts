/**
 * The time windows of the record's partitions (ADR 0020). A partition holds the notifications whose id
 * (a UUIDv7) was made in its window, and their delivery rows and ack journal. Windows follow one another
 * without gaps; each is `width` long, aligned to a multiple of its width since the epoch.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Window widths a plan chooses from: the largest at most a twelfth of the retention. */
const WIDTHS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map(
  (s) => s * SECOND,
);

/** Windows kept made ahead of now: a publish always finds its partition, even after some failed runs. */
const WINDOWS_AHEAD = 3;

/**
 * The width of a partition's window for a retention of `retentionMs`: about a twelfth of it (1 s to 1 day),
 * so the record holds at most the retention plus a twelfth (and the time its last notifications take to end).
 */
export function partitionWidthMs(retentionMs: number): number {
  const target = retentionMs / 12;
  let width = WIDTHS[0]!;
  for (const w of WIDTHS) if (w <= target) width = w;
  return width;
}

/** How often retention runs: a quarter of a window, between 200 ms and a minute. */
export function retentionIntervalMs(widthMs: number): number {
  return Math.min(MINUTE, Math.max(200, Math.floor(widthMs / 4)));
}

export interface PartitionWindow {
  /** Table name suffix, `p` and the start in UTC: `p20261207t120000`; milliseconds when the width has them. */
  suffix: string;
  startsAt: number;
  endsAt: number;
}

export function windowAt(startsAt: number, widthMs: number): PartitionWindow {
  return { suffix: suffixOf(startsAt), startsAt, endsAt: startsAt + widthMs };
}

/**
 * The windows to make so that partitions cover now and WINDOWS_AHEAD windows after it: from the end of the
 * last one made (`lastEnd`; none yet, the window holding now), each `widthMs` long.
 */
export function windowsToMake(now: number, widthMs: number, lastEnd: number | null): PartitionWindow[] {
  const horizon = now + WINDOWS_AHEAD * widthMs;
  let start = lastEnd !== null && lastEnd > now - widthMs ? lastEnd : Math.floor(now / widthMs) * widthMs;
  const windows: PartitionWindow[] = [];
  while (start <= horizon) {
    windows.push(windowAt(start, widthMs));
    start += widthMs;
  }
  return windows;
}

function suffixOf(at: number): string {
  const iso = new Date(at).toISOString(); // 2026-12-07T12:00:00.000Z
  const ms = at % SECOND === 0 ? '' : iso.slice(20, 23);
  return `p${iso.slice(0, 10).replace(/-/g, '')}t${iso.slice(11, 19).replace(/:/g, '')}${ms}`;
}

export const RETENTION_UNITS = { SECOND, MINUTE, HOUR };
