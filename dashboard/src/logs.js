// Following log lines through `GET /logs` as the official client's `logs.watch` does (the
// contract's section 1, #20): ask `from` a time, carry on from the `maxTimestamp` the server
// answers; when nothing is new the server echoes `from`, and we wait before asking again.

const IDLE_MS = 2000;
const ERROR_MS = 5000;

export function followLogs(api, { from, machine, instance, onLines, onError, onStatus }) {
  let stopped = false;
  let timer = null;
  let cursor = from.toISOString();

  async function poll() {
    if (stopped) return;
    let body;
    try {
      body = await api.get("logs", { from: cursor, machine, instance });
    } catch (err) {
      if (stopped) return;
      onError(err);
      timer = setTimeout(poll, ERROR_MS);
      return;
    }
    if (stopped) return;
    const idle = body.logs.length === 0 && body.maxTimestamp === cursor;
    if (body.logs.length) onLines(body.logs);
    if (typeof body.maxTimestamp === "string") cursor = body.maxTimestamp;
    onStatus && onStatus(idle ? "following (nothing new)" : "following");
    timer = setTimeout(poll, idle ? IDLE_MS : 0);
  }

  poll();
  return function stop() {
    stopped = true;
    clearTimeout(timer);
  };
}
