// The dashboard: the stopping advice with its reasons, the label quality (per labeler, per
// pair, the likely label errors), one plot per signal over the number of labels (drawn by
// the server, downloadable as PNG or SVG), and the scenario runs.
// Every value from the store is set with textContent.
"use strict";

(() => {
  const { $, api, report, formatTime, cell, startStaffPage } = window.AL;
  const REFRESH_MS = 30_000;
  const ADVICE_WORDS = { continue: "continue labeling", stop: "stop labeling", check: "check the signals" };

  const EXPLAIN = {
    continue: "No stop rule says stop yet: the labels still change the model.",
    stop: "Every rule that decides agrees that the model has stopped learning from new labels.",
    check:
      "Some rules say stop and others do not yet, or the strategy looks stuck: look at the " +
      "curves below before you decide; the advice says stop only when the deciding rules agree.",
  };
  const VOTE_WORDS = { stop: "says stop", "go on": "says go on", wait: "needs more versions" };

  function item(text, className) {
    const li = document.createElement("li");
    li.textContent = text;
    if (className) li.className = className;
    return li;
  }

  function percent(value) {
    return typeof value === "number" ? `${Math.round(100 * value)}%` : "–";
  }

  function renderVotes(votes) {
    const list = Array.isArray(votes) ? votes : [];
    $("advice-votes").replaceChildren(
      ...list.map((vote) => {
        const rule = String(vote.rule).replaceAll("_", " ");
        const word = VOTE_WORDS[vote.vote] || String(vote.vote);
        const role = vote.decides ? "decides" : "watches";
        return item(`${rule} (${role}): ${word}${vote.stuck ? ", looks stuck" : ""}`, `vote ${vote.vote === "stop" ? "met" : "unmet"}`);
      }),
    );
  }

  function renderExpected(expected) {
    const box = $("advice-expected");
    if (!expected) {
      box.textContent = "";
      return;
    }
    box.textContent =
      `In the advice study (${expected.runs} simulated runs on ${expected.datasets} data sets, ` +
      `preset ${expected.policy}, ` +
      `${expected.holdout ? "with" : "without"} a holdout, judged on data sets it was not tuned on), ` +
      `this advice saved ${percent(expected.saving)} of the labels on average ` +
      `(95% interval ${percent(expected.saving_low)}–${percent(expected.saving_high)}); ` +
      `${percent(expected.premature_1)} of the runs stopped more than 1 accuracy point ` +
      `below their final accuracy (${percent(expected.premature_1_low)}–${percent(expected.premature_1_high)}).`;
  }

  function renderStrategy(advice) {
    if (!advice) {
      $("strategy-word").textContent = "none yet";
      $("strategy-reasons").replaceChildren(item("It needs a queue and two measured model versions."));
      return;
    }
    const moves = { keep: "keep", explore: "explore more with", easier: "pick easier batches with", harder: "pick harder batches with" };
    $("strategy-word").textContent =
      advice.action === "keep"
        ? `keep ${advice.strategy}`
        : `${moves[advice.action] || advice.action} ${advice.suggested} (now ${advice.strategy})`;
    const reasons = Array.isArray(advice.reasons) ? advice.reasons : [];
    $("strategy-reasons").replaceChildren(...reasons.map((r) => item(String(r))));
  }

  function renderAdvice(advice) {
    const box = $("advice");
    if (!advice) {
      box.dataset.advice = "none";
      $("advice-word").textContent = "no advice yet";
      $("advice-context").textContent = "The monitoring step writes it after each model version.";
      $("advice-explain").textContent = "";
      $("advice-reasons").replaceChildren();
      renderVotes([]);
      renderExpected(null);
      return;
    }
    const word = String(advice.advice);
    box.dataset.advice = Object.hasOwn(ADVICE_WORDS, word) ? word : "none";
    $("advice-word").textContent = ADVICE_WORDS[word] || word;
    $("advice-context").textContent =
      `Model ${advice.model_name} version ${advice.model_version}, ${advice.n_labels} labels, ` +
      `computed ${formatTime(advice.computed_at)}.`;
    $("advice-explain").textContent = EXPLAIN[word] || "";
    renderVotes(advice.votes);
    renderExpected(advice.expected);
    // One reason per rule, in the votes' order: each carries its rule's mark, so a reason
    // such as "contradictions still at 1.4%, 0.4%, 0.0% (stop below 1.0%)" reads as what it
    // is, a rule not met yet.
    const reasons = Array.isArray(advice.reasons) ? advice.reasons : [];
    const votes = Array.isArray(advice.votes) ? advice.votes : [];
    const paired = votes.length === reasons.length;
    $("advice-reasons").classList.toggle("votes", paired);
    $("advice-reasons").replaceChildren(
      ...reasons.map((reason, i) =>
        item(String(reason), paired ? `vote ${votes[i].vote === "stop" ? "met" : "unmet"}` : ""),
      ),
    );
  }

  function renderPlots(panels, stamp) {
    const figures = panels.map((panel) => {
      const name = encodeURIComponent(String(panel.name));
      const figure = document.createElement("figure");
      figure.className = "panel plot";
      figure.dataset.panel = String(panel.name);
      const img = document.createElement("img");
      img.src = `/api/dashboard/plots/${name}.svg?t=${stamp}`;
      img.alt = `${panel.title} over the number of labels`;
      img.width = 640;
      img.height = 360;
      const caption = document.createElement("figcaption");
      const text = document.createElement("span");
      text.textContent = String(panel.caption);
      caption.append(text);
      for (const fmt of ["png", "svg"]) {
        const link = document.createElement("a");
        link.className = "download";
        link.href = `/api/dashboard/plots/${name}.${fmt}`;
        link.download = `${panel.name}.${fmt}`;
        link.textContent = fmt.toUpperCase();
        caption.append(" ", link);
      }
      figure.append(img, caption);
      return figure;
    });
    $("plots").replaceChildren(...figures);
  }

  function share(value, count) {
    if (typeof value !== "number") return "–";
    return typeof count === "number" ? `${percent(value)} of ${count}` : percent(value);
  }

  function fillRows(id, rows, emptyId) {
    $(id).querySelector("tbody").replaceChildren(...rows);
    if (emptyId) $(emptyId).hidden = rows.length > 0;
    $(id).hidden = rows.length === 0 && !emptyId;
  }

  // Per labeler and per pair (the newest model version's rows), the likely label errors per
  // model version and what reviewers made of them, and the review queue's size.
  function renderQuality(quality) {
    const q = quality || {};
    const queue = q.review_queue || {};
    const decisions = q.decisions || {};
    const count = (n) => (typeof n === "number" ? n : 0);
    $("quality-queue").textContent =
      `In the review queue: ${count(queue.suspect)} likely label errors, ` +
      `${count(queue.disagreement)} disagreements, ${count(queue.sample)} spot checks. ` +
      `Decided so far: ${count(decisions.accepted)} accepted, ${count(decisions.corrected)} corrected, ` +
      `${count(decisions.sent_back)} sent back.`;
    const labelers = (Array.isArray(q.labelers) ? q.labelers : []).map((l) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(l.annotator),
        cell(typeof l.labels === "number" ? l.labels : "–", "num"),
        cell(typeof l.labels_per_hour === "number" ? l.labels_per_hour.toFixed(1) : "–", "num"),
        cell(share(l.consensus_agreement, l.consensus_items), "num"),
        cell(share(l.review_agreement, l.reviewed_items), "num"),
      );
      return tr;
    });
    fillRows("quality-labelers", labelers, "quality-labelers-empty");
    const pairs = (Array.isArray(q.pairs) ? q.pairs : []).map((p) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(p.annotators),
        cell(p.n_items, "num"),
        cell(percent(p.agreement), "num"),
        cell(typeof p.kappa === "number" ? p.kappa.toFixed(2) : "–", "num"),
      );
      return tr;
    });
    fillRows("quality-pairs", pairs, null);
    const suspects = (Array.isArray(q.suspects) ? q.suspects : []).map((s) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(`${s.model_name} v${s.model_version}`),
        cell(formatTime(s.scored_at)),
        cell(s.n_labels, "num"),
        cell(s.suspects, "num"),
        cell(s.confirmed, "num"),
        cell(s.accepted, "num"),
        cell(s.sent_back, "num"),
        cell(s.open, "num"),
      );
      return tr;
    });
    fillRows("quality-suspects", suspects, "quality-suspects-empty");
  }

  function renderRuns(runs) {
    const rows = runs.map((run) => {
      const tr = document.createElement("tr");
      const status = cell(run.status);
      status.className = `status ${run.status === "failed" ? "undone" : "labeled"}`;
      tr.append(
        cell(formatTime(run.started_at)),
        cell(run.scenario),
        cell(run.trigger),
        status,
        cell(typeof run.duration_s === "number" ? run.duration_s.toFixed(1) : "–", "num"),
        cell(run.error, "comment-cell"),
      );
      return tr;
    });
    $("runs").querySelector("tbody").replaceChildren(...rows);
    $("runs-empty").hidden = rows.length > 0;
  }

  async function refresh() {
    const button = $("refresh");
    button.disabled = true;
    try {
      const data = await api("GET", "/api/dashboard");
      renderAdvice(data.advice);
      renderStrategy(data.strategy_advice);
      renderQuality(data.label_quality);
      renderPlots(Array.isArray(data.panels) ? data.panels : [], Date.now());
      renderRuns(Array.isArray(data.scenario_runs) ? data.scenario_runs : []);
      document.body.dataset.metricRows = String(Array.isArray(data.metrics) ? data.metrics.length : 0);
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    $("refresh").addEventListener("click", refresh);
    const session = await startStaffPage("Dashboard");
    if (!session) return;
    await refresh();
    document.body.dataset.ready = "true";
    setInterval(() => {
      if (document.visibilityState === "visible") refresh();
    }, REFRESH_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
