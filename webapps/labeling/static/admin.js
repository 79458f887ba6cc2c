// The admin page: who labeled how much, the last events, the export links, and (admins
// only) the task and guidance the labelers see.
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
        cell(formatCount(l.reviewed), "num"),
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
      // A reviewer's decision shows as what it is: accepted, corrected or sent back.
      const status = cell(e.review ? String(e.review).replace("_", " ") : e.status);
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

  // The guide editor (admins only): the task and one text per class, saved together.
  function fillGuide(project) {
    const guide = project.guide || {};
    const classes = Array.isArray(project.classes) ? project.classes.map(String) : [];
    const texts = guide.classes && typeof guide.classes === "object" ? guide.classes : {};
    $("guide-task").value = typeof guide.task === "string" ? guide.task : "";
    const fields = classes.map((cls, index) => {
      const block = document.createElement("div");
      block.className = "field-block";
      const label = document.createElement("label");
      label.htmlFor = `guide-class-${index}`;
      label.textContent = cls;
      const area = document.createElement("textarea");
      area.id = `guide-class-${index}`;
      area.rows = 2;
      area.maxLength = 1000;
      area.dataset.label = cls;
      area.value = typeof texts[cls] === "string" ? texts[cls] : "";
      block.append(label, area);
      return block;
    });
    $("guide-classes").replaceChildren(...fields);
    const by = guide.updated_by ? `Last set by ${guide.updated_by}, ${formatTime(guide.updated_at)}.` : "Not set yet.";
    $("guide-status").textContent = by;
  }

  async function saveGuide(event) {
    event.preventDefault();
    const classes = {};
    $("guide-classes").querySelectorAll("textarea").forEach((area) => {
      classes[area.dataset.label] = area.value;
    });
    const button = $("guide-save");
    button.disabled = true;
    try {
      const saved = await api("PUT", "/api/admin/guide", { task: $("guide-task").value, classes });
      $("guide-status").textContent = `Saved: labelers see it at their next page load (${formatTime(saved.updated_at)}).`;
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
    }
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
    if (session.role === "admin") {
      fillGuide(session.project || {});
      $("guide-form").addEventListener("submit", saveGuide);
      $("guide-editor").hidden = false;
    }
    await refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
