// Following one instance through the server's `/rt` WebSocket, as @statebacked/client does
// (the contract's section 4): `ws(s)://<server>/rt?token=<jwt>`, JSON text frames,
// `subscribe-to-instance` answered at once with the current state, then an `instance-update`
// for every new persisted state; errors come back with the subscription's `requestId`.
// Unlike the official client, a dropped connection is retried with a growing delay, with a
// freshly signed token each time.

const PING_MS = 4 * 60 * 1000;   // the server drops connections silent for 5 minutes
const MAX_RETRY_MS = 30_000;

export function follow(session, base, machineName, machineInstanceName, { onUpdate, onError, onStatus }) {
  const requestId = Math.random().toString(36).slice(2);
  let socket = null;
  let stopped = false;
  let retryMs = 1000;
  let retryTimer = null;
  let pinger = null;

  const status = (text, live) => onStatus && onStatus(text, live);

  async function connect() {
    if (stopped) return;
    status("connecting…", false);
    const url = new URL("rt", base);
    url.protocol = url.protocol === "http:" ? "ws:" : "wss:";
    url.searchParams.set("token", await session.token());
    if (stopped) return;
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      retryMs = 1000;
      socket.send(JSON.stringify({ type: "subscribe-to-instance", machineName, machineInstanceName, requestId }));
      pinger = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send('{"type":"ping"}'), PING_MS);
      status("live", true);
    });
    socket.addEventListener("message", (e) => {
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;   // the client ignores what it cannot parse, and so do we
      }
      if (message.type === "instance-update" && message.machineName === machineName
          && message.machineInstanceName === machineInstanceName) {
        onUpdate(message);
      } else if (message.type === "error" && message.requestId === requestId) {
        onError && onError(message);
      }
    });
    socket.addEventListener("close", () => {
      clearInterval(pinger);
      if (stopped) return;
      status(`disconnected; retrying in ${Math.round(retryMs / 1000)} s`, false);
      retryTimer = setTimeout(() => connect().catch(retryLater), retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    });
  }

  function retryLater(err) {
    status(`could not connect (${err.message}); retrying`, false);
    retryTimer = setTimeout(() => connect().catch(retryLater), retryMs);
  }

  connect().catch(retryLater);

  return function stop() {
    stopped = true;
    clearTimeout(retryTimer);
    clearInterval(pinger);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "unsubscribe-from-instance", machineName, machineInstanceName, requestId }));
    }
    if (socket) socket.close();
  };
}
