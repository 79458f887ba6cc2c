// The admin page: who labeled how much, the last events, and the export links.
// Every value from the store is set with textContent.
"use strict";

(() => {
  const { $, api, report, formatTime, formatCount, cell, startStaffPage } = window.AL;

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

  async function start() {
    $("refresh").addEventListener("click", refresh);
    const session = await startStaffPage("Admin");
    if (!session) return;
    // The export is for admins only; reviewers see the activity.
    document.querySelectorAll(".export-link").forEach((link) => {
      link.hidden = session.role !== "admin";
    });
    await refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
