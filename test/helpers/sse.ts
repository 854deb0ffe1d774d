import { SseParser } from '../../libs/client/src';

/** Whether the server has ended the stream (or it was aborted). */
export interface EventStreamState {
  ended: boolean;
}

/** Reads a `text/event-stream` response in the background, handing each event to `onEvent`. */
export function readEventStream(response: Response, onEvent: (event: string, data: string) => void): EventStreamState {
  const state: EventStreamState = { ended: false };
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const parser = new SseParser((event) => onEvent(event.event, event.data));
  const decoder = new TextDecoder();
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted by the test, or ended by the server
    }
    state.ended = true;
  })();
  return state;
}
