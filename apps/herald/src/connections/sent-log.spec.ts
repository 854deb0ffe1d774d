import { SentLog } from './sent-log';

describe('SentLog', () => {
  it('takes an id and everything sent before it, in send order, and leaves what came after', () => {
    const log = new SentLog(10);
    for (const id of ['a', 'b', 'c', 'd']) log.record(id);
    expect(log.takeThrough('c')).toEqual(['a', 'b', 'c']);
    expect(log.takeThrough('c')).toBeNull();
    expect(log.takeThrough('d')).toEqual(['d']);
    expect(log.size).toBe(0);
  });

  it('skips what was acked by id, and keeps a resent id in its first place', () => {
    const log = new SentLog(10);
    for (const id of ['a', 'b', 'c', 'a']) log.record(id);
    log.forget('b');
    expect(log.takeThrough('a')).toEqual(['a']);
    expect(log.takeThrough('c')).toEqual(['c']);
  });

  it('never covers an id it was not given, however its neighbours were sent', () => {
    const log = new SentLog(10);
    log.record('late');
    expect(log.takeThrough('never-sent-here')).toBeNull();
    expect(log.size).toBe(1);
  });

  it('drops the oldest entry past its bound', () => {
    const log = new SentLog(2);
    for (const id of ['a', 'b', 'c']) log.record(id);
    expect(log.size).toBe(2);
    expect(log.takeThrough('a')).toBeNull();
    expect(log.takeThrough('c')).toEqual(['b', 'c']);
  });
});
