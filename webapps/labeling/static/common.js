// What the pages share: the API call, messages, formatting, and for the admin and
// dashboard pages the session check and logout. Every value from the store is set with
// textContent.
"use strict";

window.AL = (() => {
  const $ = (id) => document.getElementById(id);
  let csrf = "";

  class ApiError extends Error {
    constructor(status, detail, code) {
      super(detail);
      this.status = status;
      this.detail = detail;
      this.code = code || "";
    }
  }

  // The session's CSRF token, sent with every call that changes something.
  function setCsrf(token) {
    csrf = token || "";
  }

  let leaving = false;
  function goToLogin() {
    if (leaving) return;
    leaving = true;
    // Relative: the pages live side by side, wherever the server mounts them.
    window.location.assign("login.html?next=" + encodeURIComponent(window.location.pathname));
  }

  function describeError(data, response) {
    const detail = data && data.detail;
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d && typeof d.msg === "string" ? d.msg : JSON.stringify(d))).join("; ");
    }
    if (data && typeof data.error === "string" && data.error) return data.error;
    return `The server answered ${response.status} ${response.statusText}`.trim();
  }

  // One call to the API: JSON in and out; errors become ApiError with the server's detail.
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, "The server cannot be reached: check the connection, then try again.", "network");
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (response.status === 401) {
      goToLogin();
      throw new ApiError(401, describeError(data, response), "unauthorized");
    }
    if (!response.ok) throw new ApiError(response.status, describeError(data, response), data && data.error);
    return data;
  }

  // A message above the page; errors stay until dismissed, the others fade after 6 s.
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
    if (kind !== "error") setTimeout(() => message.remove(), 6000);
  }

  function report(error) {
    if (error instanceof ApiError && error.status === 401) return; // on our way to the login page
    showMessage(error instanceof ApiError ? error.detail : String(error));
  }

  function dismissMessages() {
    $("messages").replaceChildren();
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
  // Returns the session, or null when the page is not for this account (a labeler is sent
  // to the labeling page).
  async function startStaffPage(titlePrefix) {
    $("logout").addEventListener("click", logout);
    let session;
    try {
      session = await api("GET", "/api/session");
    } catch (error) {
      report(error);
      return null;
    }
    setCsrf(session.csrf_token);
    const project = session.project || {};
    if (project.name) {
      $("project-name").textContent = String(project.name);
      document.title = `${titlePrefix} · ${project.name}`;
    }
    $("user-name").textContent = session.user ? String(session.user) : "";
    if (session.role !== "admin" && session.role !== "reviewer") {
      // Not this account's page: back to the labeling page (relative: the pages live side
      // by side), and no history entry to come back here by.
      window.location.replace("index.html");
      return null;
    }
    document.querySelector("main").hidden = false; // shown to staff only, once known
    return session;
  }

  return {
    $,
    api,
    ApiError,
    setCsrf,
    showMessage,
    report,
    dismissMessages,
    formatTime,
    formatCount,
    cell,
    logout,
    startStaffPage,
  };
})();
