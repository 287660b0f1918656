// Signs in with POST /api/v1/session; the answer sets the session cookie.
"use strict";
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const body = {
    user: document.getElementById("user").value,
    password: document.getElementById("password").value,
  };
  const totp = document.getElementById("totp").value.trim();
  if (totp) body.totp = totp;
  try {
    const r = await fetch("/api/v1/session", {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    if (r.ok) { location.assign("/"); return; }
    const answer = await r.json().catch(() => null);
    error.textContent = (answer && answer.error && answer.error.message) || ("sign-in failed (" + r.status + ")");
  } catch (err) {
    error.textContent = "the node did not answer: " + err;
  }
});
