/** What each capacity phase writes (dist/bench-results/capacity-<phase>.json), read by constants.ts. */
import type { Window } from './window';

/** bench/capacity/idle.ts: one replica, empty, connecting, then its connections idle. */
export interface IdleResult {
  replicas: 1;
  connections: number;
  connected: number;
  rssEmptyBytes: number;
  rssConnectedBytes: number;
  connectPerSecond: number;
  windows: { empty: Window; connect: Window; idle: Window };
}

/** One rate of bench/capacity/unicast.ts. */
export interface UnicastRate {
  rate: number;
  perReplicaRate: number;
  achievedRate: number;
  publishErrors: number;
  p50: number;
  p99: number;
  window: Window;
}

/** bench/capacity/unicast.ts: its users idle, then one window per rate. */
export interface UnicastResult {
  replicas: number;
  users: number;
  idle: Window;
  rates: UnicastRate[];
}

/** bench/capacity/broadcast.ts: its users idle, then the broadcasts (units: deliveries). */
export interface BroadcastResult {
  replicas: number;
  users: number;
  broadcasts: number;
  deliveriesPerSecond: number;
  idle: Window;
  broadcast: Window;
}
