// What the admin and dashboard pages share: the API call, messages, formatting, the
// session check and logout. Every value from the store is set with textContent.
"use strict";

window.AL = (() => {
  const $ = (id) => document.getElementById(id);
  let csrf = "";

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(method, path) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let response;
    try {
      response = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store" });
    } catch {
      throw new ApiError(0, "The server cannot be reached: check the connection, then try again.");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.status === 401) {
      window.location.assign("login.html?next=" + encodeURIComponent(window.location.pathname));
      throw new ApiError(401, "Please log in.");
    }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : `The server answered ${response.status}.`;
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  function showMessage(text, kind = "error") {
    const box = $("messages");
    const message = document.createElement("div");
    message.className = `message ${kind}`;
    const body = document.createElement("span");
    body.className = "message-text";
    body.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "message-close";
    close.setAttribute("aria-label", "Dismiss this message");
    close.textContent = "×";
    close.addEventListener("click", () => message.remove());
    message.append(body, close);
    box.append(message);
    while (box.children.length > 3) box.firstElementChild.remove();
  }

  function report(error) {
    if (error instanceof ApiError && error.status === 401) return;
    showMessage(error instanceof ApiError ? error.detail : String(error));
  }

  function formatTime(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  function formatCount(value) {
    return typeof value === "number" && Number.isFinite(value) ? value.toLocaleString() : "–";
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  async function logout() {
    try {
      await api("POST", "/api/logout");
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) {
        report(error);
        return;
      }
    }
    window.location.assign("login.html");
  }

  // The session for a page of reviewers and admins: fills the top bar, wires logout.
  // Returns the session, or null when the page is not for this account.
  async function startStaffPage(titlePrefix) {
    $("logout").addEventListener("click", logout);
    let session;
    try {
      session = await api("GET", "/api/session");
    } catch (error) {
      report(error);
      return null;
    }
    csrf = session.csrf_token || "";
    const project = session.project || {};
    if (project.name) {
      $("project-name").textContent = String(project.name);
      document.title = `${titlePrefix} · ${project.name}`;
    }
    $("user-name").textContent = session.user ? String(session.user) : "";
    if (session.role !== "admin" && session.role !== "reviewer") {
      showMessage("This page is for admins and reviewers: your account can label, from the labeling page.");
      return null;
    }
    return session;
  }

  return { $, api, ApiError, showMessage, report, formatTime, formatCount, cell, startStaffPage };
})();
