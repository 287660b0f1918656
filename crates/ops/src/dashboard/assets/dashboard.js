// DWCP ops center: swaps in the parts each live frame carries. The server
// renders everything (HTML and SVG); this script only places it.
"use strict";
(function () {
  const page = document.body.dataset.page;
  const live = document.getElementById("live");
  const say = (text, on) => { live.textContent = text; live.className = "live " + (on ? "on" : "off"); };
  const events = new EventSource("/api/v1/events?page=" + encodeURIComponent(page));
  // A part is replaced only when it changed, so that a button stays the
  // same element between frames (a click never lands on a stale one).
  const shown = {};
  events.addEventListener("frame", (e) => {
    const frame = JSON.parse(e.data);
    for (const [id, html] of Object.entries(frame.parts)) {
      const el = document.getElementById(id);
      if (el && shown[id] !== html) { el.innerHTML = html; shown[id] = html; }
    }
    say("live · " + new Date(frame.at_unix_ms).toLocaleTimeString(), true);
  });
  // EventSource reconnects by itself; a closed stream after a sign-out or
  // an expired session sends the browser back to the sign-in page.
  events.onerror = () => {
    say("reconnecting…", false);
    fetch("/api/v1/session", { credentials: "same-origin" }).then((r) => {
      if (r.status === 401) location.assign("/login");
    }).catch(() => {});
  };
  // Buttons rendered with data-post (acknowledge, resolve, approve,
  // reject, undo) POST to the API with the session's CSRF token; the next
  // frame shows the result.
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-post]");
    if (!button) return;
    button.disabled = true;
    const who = await fetch("/api/v1/session", { credentials: "same-origin" });
    const { csrf } = who.ok ? await who.json() : {};
    const r = await fetch(button.dataset.post, {
      method: "POST", credentials: "same-origin",
      headers: { "x-csrf-token": csrf || "", "content-type": "application/json" }, body: "{}",
    });
    if (!r.ok) {
      const answer = await r.json().catch(() => null);
      alert((answer && answer.error && answer.error.message) || ("refused (" + r.status + ")"));
      button.disabled = false;
    }
  });
  document.getElementById("logout").addEventListener("click", async () => {
    const who = await fetch("/api/v1/session", { credentials: "same-origin" });
    if (who.ok) {
      const { csrf } = await who.json();
      await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin", headers: { "x-csrf-token": csrf } });
    }
    location.assign("/login");
  });
})();
