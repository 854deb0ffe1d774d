import WebSocket from 'ws';

/**
 * A full garbage collection in another Node process, through its inspector (started with
 * --inspect=127.0.0.1:<port>): HeapProfiler.collectGarbage. Works for Herald replicas without adding a
 * hook to the server (NODE_OPTIONS carries --inspect), and the same way for the baselines.
 */
export async function collectGarbage(inspectPort: number): Promise<void> {
  const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on :${inspectPort}`);
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  try {
    for (let id = 1; id <= 2; id++) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('collectGarbage timed out')), 30_000);
        socket.on('message', (data: Buffer) => {
          const reply = JSON.parse(data.toString('utf8')) as { id?: number };
          if (reply.id === id) {
            clearTimeout(timer);
            resolve();
          }
        });
        socket.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      });
    }
  } finally {
    socket.close();
  }
}
