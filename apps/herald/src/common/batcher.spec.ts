import { Batcher } from './batcher';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('writes what arrives together in one batch and answers each caller with its own result', async () => {
    const writes: number[][] = [];
    const batcher = new Batcher<number, string>(
      async (items) => {
        writes.push(items);
        return items.map((n) => `r${n}`);
      },
      { windowMs: 0, maxBatch: 10, maxInFlight: 1 },
    );
    const answers = await Promise.all([1, 2, 3].map((n) => batcher.add(n)));
    expect(answers).toEqual(['r1', 'r2', 'r3']);
    expect(writes).toEqual([[1, 2, 3]]);
  });

  it('gathers the next batch while one is written, and splits at maxBatch', async () => {
    const writes: number[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new Batcher<number, number>(
      async (items) => {
        writes.push(items);
        if (writes.length === 1) await gate;
        return items;
      },
      { windowMs: 0, maxBatch: 2, maxInFlight: 1 },
    );
    const first = batcher.add(1);
    await tick();
    await tick();
    const rest = [2, 3, 4].map((n) => batcher.add(n));
    await tick();
    expect(writes).toEqual([[1]]);
    expect(batcher.pending).toBe(3);
    release();
    expect(await Promise.all([first, ...rest])).toEqual([1, 2, 3, 4]);
    expect(writes).toEqual([[1], [2, 3], [4]]);
  });

  it('writes each item alone when the batch fails, so only the bad one fails', async () => {
    const batcher = new Batcher<number, number>(
      async (items) => {
        if (items.includes(13)) throw new Error('batch refused');
        return items;
      },
      {
        windowMs: 1,
        maxBatch: 10,
        maxInFlight: 1,
        alone: async (n) => {
          if (n === 13) throw new Error(`refused ${n}`);
          return n * 10;
        },
      },
    );
    const results = await Promise.allSettled([12, 13, 14].map((n) => batcher.add(n)));
    expect(results).toEqual([
      { status: 'fulfilled', value: 120 },
      { status: 'rejected', reason: new Error('refused 13') },
      { status: 'fulfilled', value: 140 },
    ]);
  });

  it('rejects every caller of a failed batch when there is no way to write items alone', async () => {
    const batcher = new Batcher<number, number>(
      async () => {
        throw new Error('store down');
      },
      { windowMs: 0, maxBatch: 10, maxInFlight: 1 },
    );
    const results = await Promise.allSettled([1, 2].map((n) => batcher.add(n)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    // and it goes on working afterwards
    expect(batcher.pending).toBe(0);
  });

  it('waits the window only after a batch that had company; a lone item under light load goes at once', async () => {
    jest.useFakeTimers();
    try {
      const writes: number[][] = [];
      const batcher = new Batcher<number, number>(
        async (items) => {
          writes.push(items);
          return items;
        },
        { windowMs: 60_000, maxBatch: 10, maxInFlight: 1 },
      );
      const lone = batcher.add(1);
      await jest.advanceTimersByTimeAsync(0); // one turn of the loop, not the window
      expect(await lone).toBe(1);
      const pair = Promise.all([batcher.add(2), batcher.add(3)]);
      await jest.advanceTimersByTimeAsync(0);
      expect(await pair).toEqual([2, 3]);
      // The batch before had company: the next one gathers for the window.
      const next = batcher.add(4);
      await jest.advanceTimersByTimeAsync(59_000);
      expect(writes).toEqual([[1], [2, 3]]);
      const joined = batcher.add(5);
      await jest.advanceTimersByTimeAsync(1_000);
      expect(await Promise.all([next, joined])).toEqual([4, 5]);
      expect(writes).toEqual([[1], [2, 3], [4, 5]]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('with alwaysWait, holds even a lone first item for the window, so items that come apart go together', async () => {
    jest.useFakeTimers();
    try {
      const writes: number[][] = [];
      const batcher = new Batcher<number, number>(
        async (items) => {
          writes.push(items);
          return items;
        },
        { windowMs: 10, alwaysWait: true, maxBatch: 10, maxInFlight: 1 },
      );
      const first = batcher.add(1);
      await jest.advanceTimersByTimeAsync(4);
      const second = batcher.add(2);
      expect(writes).toEqual([]);
      await jest.advanceTimersByTimeAsync(6);
      expect(await Promise.all([first, second])).toEqual([1, 2]);
      expect(writes).toEqual([[1, 2]]);
    } finally {
      jest.useRealTimers();
    }
  });
});
