/** What the watchdog of one connection acts on. */
export interface WatchedLink {
  /** False once the client moved on from this connection: its ticks do nothing. */
  current(): boolean;
  ping(): void;
  /** Nothing heard for too long: the connection counts as dead. */
  dead(reason: string): void;
}

/**
 * One timer per client. The server pings at `heartbeatMs` (invisible to a
 * browser) and sends SSE comments as often; a WebSocket client pings when
 * quiet for half an interval, so a live link is never silent for long. Past
 * the interval plus the margin, the connection is dead.
 */
export class Watchdog {
  private lastReceivedAt = 0;
  private lastTickAt = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly marginMs: number) {}

  /** Something arrived from the server. */
  heard(): void {
    this.lastReceivedAt = Date.now();
  }

  start(heartbeatMs: number, link: WatchedLink): void {
    clearInterval(this.timer);
    const limit = heartbeatMs + this.marginMs;
    const every = Math.max(100, Math.floor(heartbeatMs / 4));
    this.lastTickAt = Date.now();
    this.timer = setInterval(() => {
      if (!link.current()) return;
      const now = Date.now();
      const late = now - this.lastTickAt > 2 * every;
      this.lastTickAt = now;
      const silent = now - this.lastReceivedAt;
      if (late) {
        // A throttled background tab, a sleeping laptop: our own timer was late, so the silence is
        // not the server's. Ask, and judge at a later tick.
        link.ping();
        this.lastReceivedAt = Math.max(this.lastReceivedAt, now - heartbeatMs / 2);
      } else if (silent > limit) {
        link.dead(`nothing from the server for ${silent} ms (heartbeat ${heartbeatMs} ms)`);
      } else if (silent >= heartbeatMs / 2) {
        link.ping();
      }
    }, every);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
