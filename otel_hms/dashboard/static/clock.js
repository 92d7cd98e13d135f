// The server's clock, as its answers tell it (`now_ms`). Live windows and "… ago" follow it,
// not this browser's clock, which may be minutes off: a window drawn by a clock ahead of the
// server's would drop the very points the server just sent for "the last 5 minutes".

let offset = 0; // server clock minus this browser's, from the last answer that had `now_ms`

/** Now by the server's clock, in ms since the epoch. */
export function serverNow() {
  return Date.now() + offset;
}

/** Take the server's clock from an answer's `now_ms`, when it has one. */
export function noteClock(body) {
  if (body && typeof body.now_ms === "number") offset = body.now_ms - Date.now();
}
