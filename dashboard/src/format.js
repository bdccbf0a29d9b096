// Formatting for people: times, durations, JSON, state values.

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function ago(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  if (!Number.isFinite(ms)) return "";
  return ms >= 0 ? `${duration(ms)} ago` : `in ${duration(-ms)}`;
}

export function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function json(value, indent = 2) {
  return value === undefined ? "—" : JSON.stringify(value, null, indent);
}

// {"a": {"b": "c"}} -> "a.b.c"; parallel regions are joined: "p.(a.x, b.y)"
export function stateText(value) {
  if (typeof value === "string") return value;
  if (!value || typeof value !== "object") return String(value);
  const parts = Object.entries(value).map(([key, sub]) => {
    const inner = stateText(sub);
    return inner ? `${key}.${inner}` : key;
  });
  return parts.length === 1 ? parts[0] : `(${parts.join(", ")})`;
}

export function eventText(event) {
  if (typeof event === "string") return event;
  if (event && typeof event === "object" && typeof event.type === "string") {
    const rest = Object.keys(event).filter((k) => k !== "type");
    return rest.length ? `${event.type} ${JSON.stringify(Object.fromEntries(rest.map((k) => [k, event[k]])))}` : event.type;
  }
  return JSON.stringify(event);
}

export function shortId(id) {
  return id && id.length > 12 ? `${id.slice(0, 10)}…` : id;
}
