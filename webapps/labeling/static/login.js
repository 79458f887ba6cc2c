// The login form: posts the credentials as JSON, then goes to the page asked for.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // Only a page of this site: never an open redirect to another origin. The text is
  // resolved as the browser will resolve it (it drops tabs and newlines, so "/\t/evil.example"
  // is "//evil.example", and reads "\" as "/"), and kept only if it stays on this origin.
  function nextPage() {
    const next = new URLSearchParams(window.location.search).get("next") || "/";
    try {
      const url = new URL(next, window.location.origin);
      if (url.origin === window.location.origin) return url.pathname + url.search + url.hash;
    } catch {
      // not a URL: go home
    }
    return "/";
  }

  function showError(text) {
    const box = $("login-error");
    box.textContent = text; // the box stays in the page so screen readers announce it
  }

  async function submit(event) {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username || !password) {
      showError("Enter your user name and your password.");
      (username ? $("password") : $("username")).focus();
      return;
    }
    const button = $("login-submit");
    button.disabled = true;
    showError("");
    let response;
    let data = null;
    try {
      response = await fetch("/api/login", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ username, password }),
      });
      const text = await response.text();
      try {
        data = text ? JSON.parse(text) : null;
      } catch {
        data = null;
      }
    } catch {
      button.disabled = false;
      showError("The server cannot be reached: check the connection, then try again.");
      return;
    }
    if (response.ok) {
      window.location.assign(nextPage());
      return;
    }
    button.disabled = false;
    const detail = data && typeof data.detail === "string" ? data.detail : "";
    if (response.status === 401) showError(detail || "Wrong user name or password.");
    else if (response.status === 429) showError(detail || "Too many failed attempts: wait a little, then try again.");
    else showError(detail || `The server answered ${response.status}: try again.`);
    $("password").value = "";
    $("password").focus();
  }

  async function alreadyLoggedIn() {
    try {
      const response = await fetch("/api/session", { credentials: "same-origin", cache: "no-store" });
      if (response.ok) window.location.replace(nextPage());
    } catch {
      // offline: the form will say so on submit
    }
  }

  function start() {
    showError("");
    $("login-form").addEventListener("submit", submit); // the user name field has autofocus
    alreadyLoggedIn();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
