// The admin page: who labeled how much, the last events, and the export links.
// Every value from the store is set with textContent.
"use strict";

(() => {
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

  function fillTable(id, rows, emptyId) {
    $(id).querySelector("tbody").replaceChildren(...rows);
    $(emptyId).hidden = rows.length > 0;
  }

  async function loadStats() {
    const stats = await api("GET", "/api/admin/stats");
    const labelers = Array.isArray(stats.labelers) ? stats.labelers : [];
    const rows = labelers.map((l) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(l.annotator),
        cell(formatCount(l.labeled), "num"),
        cell(formatCount(l.skipped), "num"),
        cell(formatTime(l.last_at)),
      );
      return tr;
    });
    fillTable("labelers", rows, "labelers-empty");
    $("total-labeled").textContent =
      typeof stats.total_labeled === "number" ? `· ${formatCount(stats.total_labeled)} items labeled` : "";
  }

  async function loadEvents() {
    const data = await api("GET", "/api/admin/events?limit=100");
    const events = Array.isArray(data.events) ? data.events : [];
    const rows = events.map((e) => {
      const tr = document.createElement("tr");
      const status = cell(e.status);
      status.className = `status ${e.status === "labeled" || e.status === "skipped" || e.status === "undone" ? e.status : ""}`;
      tr.append(
        cell(formatTime(e.created_at)),
        cell(e.item_id, "mono"),
        cell(e.label),
        status,
        cell(e.annotator),
        cell(e.comment, "comment-cell"),
        cell(e.event_id, "num mono"),
      );
      return tr;
    });
    fillTable("events", rows, "events-empty");
  }

  async function refresh() {
    const button = $("refresh");
    button.disabled = true;
    try {
      await Promise.all([loadStats(), loadEvents()]);
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
    }
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

  async function start() {
    $("logout").addEventListener("click", logout);
    $("refresh").addEventListener("click", refresh);
    let session;
    try {
      session = await api("GET", "/api/session");
    } catch (error) {
      report(error);
      return;
    }
    csrf = session.csrf_token || "";
    const project = session.project || {};
    if (project.name) {
      $("project-name").textContent = String(project.name);
      document.title = `Admin · ${project.name}`;
    }
    $("user-name").textContent = session.user ? String(session.user) : "";
    if (session.role !== "admin" && session.role !== "reviewer") {
      showMessage("This page is for admins and reviewers: your account can label, from the labeling page.");
      return;
    }
    // The export is for admins only; reviewers see the activity.
    document.querySelectorAll(".export-link").forEach((link) => {
      link.hidden = session.role !== "admin";
    });
    await refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
