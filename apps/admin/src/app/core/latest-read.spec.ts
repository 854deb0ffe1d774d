import { LatestRead } from './latest-read';

describe('LatestRead', () => {
  it('hands each answer on, and is not loading once it landed', async () => {
    const read = new LatestRead();
    const seen: number[] = [];
    const pending = read.run(
      () => Promise.resolve(1),
      (v) => seen.push(v),
    );
    expect(read.loading()).toBe(true);
    await pending;
    expect(seen).toEqual([1]);
    expect(read.loading()).toBe(false);
  });

  it('drops an answer that comes after a newer read began', async () => {
    const read = new LatestRead();
    const seen: string[] = [];
    let answer: (value: string) => void = () => undefined;
    const slow = read.run(
      () => new Promise<string>((resolve) => (answer = resolve)),
      (v) => seen.push(v),
    );
    await read.run(
      () => Promise.resolve('new'),
      (v) => seen.push(v),
    );
    answer('old');
    await slow;
    expect(seen).toEqual(['new']);
    expect(read.loading()).toBe(false);
  });

  it('says what went wrong, and forgets it when a read succeeds', async () => {
    const read = new LatestRead();
    await read.run(
      () => Promise.reject(new Error('the line went dead')),
      () => undefined,
    );
    expect(read.error()).toBe('the line went dead');
    expect(read.loading()).toBe(false);
    await read.run(
      () => Promise.resolve(0),
      () => undefined,
    );
    expect(read.error()).toBeNull();
  });
});
