import { DeferredQueue } from './deferred-queue';

describe('DeferredQueue', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('hands each item over once it has waited the delay, in the order they came, with one timer', async () => {
    const taken: string[][] = [];
    const queue = new DeferredQueue<string>(100, async (items) => {
      taken.push(items);
    });
    queue.add('a');
    jest.advanceTimersByTime(40);
    queue.add('b');
    queue.add('c');
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(59);
    expect(taken).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(taken).toEqual([['a']]);
    expect(queue.size).toBe(2);
    jest.advanceTimersByTime(40);
    expect(taken).toEqual([['a'], ['b', 'c']]);
    expect(queue.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('on close, hands over what waits at once, then every later item at once, and waits for them', async () => {
    const taken: string[][] = [];
    let finish: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (finish = resolve));
    const queue = new DeferredQueue<string>(100, async (items) => {
      taken.push(items);
      await slow;
    });
    queue.add('a');
    queue.add('b');
    let closed = false;
    const closing = queue.close().then(() => (closed = true));
    expect(taken).toEqual([['a', 'b']]);
    expect(jest.getTimerCount()).toBe(0);
    queue.add('late');
    expect(taken).toEqual([['a', 'b'], ['late']]);
    await Promise.resolve();
    expect(closed).toBe(false);
    finish();
    await closing;
    expect(closed).toBe(true);
  });
});
