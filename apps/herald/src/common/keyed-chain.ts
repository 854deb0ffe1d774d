/**
 * Runs work one piece at a time per key, in the order it was given: what comes for one key (a user's sends,
 * a stream's offsets) is done in turn, while different keys run side by side. A failed piece does not stop
 * the ones after it; its caller gets the error. A key whose chain has run out is forgotten.
 */
export class KeyedChain<K> {
  private readonly tails = new Map<K, Promise<unknown>>();

  run(key: K, work: () => Promise<void>): Promise<void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(work);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }
}
