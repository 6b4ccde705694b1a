// Talking to mediabot: JSON calls with the key in the Authorization header, and WebSockets that carry the
// key in a header too (as a subprotocol). Every failure becomes an ApiError holding one sentence a person
// can read.

import { locale, t } from "./i18n.js";

const KEY_PROTOCOL = "mediabot.key."; // Sec-WebSocket-Protocol entry that carries the key
const PROTOCOL = "mediabot"; // the one the server answers with

// What every key the server makes looks like ("mb_" and URL-safe base64): anything else is a paste gone
// wrong, and would not fit in a header or a subprotocol anyway.
const KEY_SHAPE = /^mb_[A-Za-z0-9_-]{20,100}$/;

let apiKey = null;
let onReach = () => {};

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

// `listener(reached)` hears whether each call reached mediabot (any answer, even a refusal) or not.
export function onReachability(listener) {
  onReach = listener;
}

export function isKeyShaped(key) {
  return KEY_SHAPE.test(key);
}

export function hasKey() {
  return Boolean(apiKey);
}

export async function api(method, path, body) {
  if (!apiKey) throw new ApiError(t("Enter your API key first."), 0, "no_key");
  const init = {
    method,
    cache: "no-store",
    // The page's language (the picker's or the browser's): the API's error sentences come in it too.
    headers: { Authorization: `Bearer ${apiKey}`, Accept: "application/json", "Accept-Language": locale.replace("_", "-") },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    onReach(false);
    throw new ApiError(t("Could not reach mediabot. Check your connection and try again."), 0, "network");
  }
  let data = null;
  if (resp.status !== 204) {
    try {
      data = await resp.json();
    } catch {
      // not JSON (a proxy's error page): described below by its status
    }
  }
  // A proxy's own error page (mediabot down behind it) is no answer from mediabot.
  onReach(resp.ok || Boolean(data && data.error));
  if (!resp.ok) {
    const error = data && data.error;
    const message = (error && error.message) || `mediabot answered ${resp.status} ${resp.statusText}. Try again shortly.`;
    throw new ApiError(message, resp.status, (error && error.code) || "");
  }
  return data;
}

// A WebSocket to `path` (with its query), authenticated with the key as a subprotocol: it travels in a
// header, never in the URL, so it reaches no access log or proxy. `onOpen()` runs once the server accepted
// the handshake; `onMessage(data)` gets each parsed JSON message; `onClose(event, opened)` gets the close,
// and whether the socket was ever open.
export function openSocket(path, { onOpen, onMessage, onClose }) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // The key's shape (checked when it is saved) is always a valid subprotocol token.
  const ws = new WebSocket(`${scheme}//${location.host}${path}`, [PROTOCOL, KEY_PROTOCOL + apiKey]);
  let opened = false;
  ws.addEventListener("open", () => {
    opened = true;
    if (onOpen) onOpen();
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
  ws.addEventListener("close", (event) => onClose(event, opened));
  return ws;
}

