// Talking to mediabot: JSON calls with the key in the Authorization header, and WebSockets that carry the
// key in a header too. Every failure becomes an ApiError holding one sentence a person can read.

const KEY_PROTOCOL = "mediabot.key."; // Sec-WebSocket-Protocol entry that carries the key
const PROTOCOL = "mediabot"; // the one the server answers with

let apiKey = null;
// How WebSockets authenticate: "protocol" (the key as a subprotocol, so in a header, never in a URL or an
// access log), or "query" once this server has refused that handshake (a server older than the page).
let socketAuth = "protocol";
let protocolWorked = false;

export class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setKey(key) {
  apiKey = key;
}

export function hasKey() {
  return Boolean(apiKey);
}

export async function api(method, path, body) {
  if (!apiKey) throw new ApiError("Enter your API key first.", 0, "no_key");
  const init = {
    method,
    cache: "no-store",
    headers: { Authorization: `Bearer ${apiKey}`, Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError("Could not reach mediabot. Check your connection and try again.", 0, "network");
  }
  let data = null;
  if (resp.status !== 204) {
    try {
      data = await resp.json();
    } catch {
      // not JSON (a proxy's error page): described below by its status
    }
  }
  if (!resp.ok) {
    const error = data && data.error;
    const message = (error && error.message) || `mediabot answered ${resp.status} ${resp.statusText}. Try again shortly.`;
    throw new ApiError(message, resp.status, (error && error.code) || "");
  }
  return data;
}

// A WebSocket to `path` (with its query), authenticated with the key. `onMessage(data)` gets each parsed
// JSON message; `onClose(event, opened)` gets the close, and whether the socket was ever open.
export function openSocket(path, { onMessage, onClose }) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const address = `${scheme}//${location.host}${path}`;
  const mode = socketAuth;
  let ws;
  try {
    if (mode === "protocol") {
      ws = new WebSocket(address, [PROTOCOL, KEY_PROTOCOL + apiKey]);
    } else {
      const join = path.includes("?") ? "&" : "?";
      ws = new WebSocket(`${address}${join}token=${encodeURIComponent(apiKey)}`);
    }
  } catch {
    // A key with characters a subprotocol cannot hold: the query string is the only way left.
    socketAuth = "query";
    return openSocket(path, { onMessage, onClose });
  }
  let opened = false;
  ws.addEventListener("open", () => {
    opened = true;
    if (mode === "protocol") protocolWorked = true;
  });
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    onMessage(message);
  });
  ws.addEventListener("close", (event) => {
    if (mode === "protocol" && !opened && !protocolWorked && socketAuth === "protocol") {
      // The handshake failed before this server ever accepted the key as a subprotocol: it predates that,
      // so fall back to the query string (the caller reconnects at once).
      socketAuth = "query";
      onClose(event, false, true);
      return;
    }
    onClose(event, opened, false);
  });
  return ws;
}
