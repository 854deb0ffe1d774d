import { type CursorPage, PagedList } from './paged-list';

describe('PagedList', () => {
  it('appends each page and keeps the cursor of the last', async () => {
    const list = new PagedList<number>();
    await list.load(() => Promise.resolve({ items: [3, 2], nextCursor: '2' }));
    await list.load(() => Promise.resolve({ items: [1], nextCursor: null }));
    expect(list.items()).toEqual([3, 2, 1]);
    expect(list.next()).toBeNull();
    expect(list.loading()).toBe(false);
  });

  it('drops the answer to a listing that was reset while it was read', async () => {
    const list = new PagedList<string>();
    let answer: (page: CursorPage<string>) => void = () => undefined;
    const slow = list.load(() => new Promise<CursorPage<string>>((resolve) => (answer = resolve)));
    list.reset();
    await list.load(() => Promise.resolve({ items: ['new'], nextCursor: null }));
    answer({ items: ['old'], nextCursor: '9' });
    await slow;
    expect(list.items()).toEqual(['new']);
    expect(list.next()).toBeNull();
  });

  it('says what went wrong', async () => {
    const list = new PagedList<string>();
    await list.load(() => Promise.reject(new Error('the line went dead')));
    expect(list.error()).toBe('the line went dead');
    expect(list.loading()).toBe(false);
  });
});
