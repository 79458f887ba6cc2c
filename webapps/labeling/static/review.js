// The review page (reviewers and admins): one item of the review queue at a time, its
// labels, the consensus and the model's doubt; accept, correct to a class, or send back
// with a comment, from the keyboard. Decisions are sent in order and each names the
// item's state it was taken on (seen_event_id), so a decision someone took first stays.
// Spans, boxes and audio items are drawn by the labeling page's own task modules (spans.js,
// boxes.js, audio.js): a reviewer edits the spans or boxes shown (the consensus, else the
// first labeler's, or any labeler's with "Start from these") and Enter decides with them;
// the same list as the item's is an accept. Text from the data is only ever set through
// textContent, never parsed as HTML.
"use strict";

(() => {
  const FETCH = 5;
  const RECENT_SHOWN = 10;
  const REASONS = {
    suspect: "likely label error",
    disagreement: "labelers disagree",
    sample: "spot check",
  };

  const { $, api, ApiError, showMessage, report, dismissMessages, formatCount, startStaffPage } = window.AL;

  const state = {
    classes: [],
    multi: false,
    keyToClass: new Map(),
    classToKey: new Map(),
    selected: new Set(), // multi-label: the classes chosen for the item on screen
    current: null,
    buffer: [],
    later: new Set(), // items put off with → this session: not shown again
    pending: Promise.resolve(),
    writes: 0,
    done: false,
    sendBack: false, // the comment box is open for a send-back: Enter sends it
    decisions: [],
    task: null, // the task module (spans, boxes, audio), or null: a class per row
    field: null, // "spans" or "boxes": the item's label is that list, edited on the page
    shownItem: null, // what the task module drew (its keys act on that item only)
  };

  const decisionPath = (id, action) => `/api/review/items/${encodeURIComponent(id)}/${action}`;

  function kbd(text) {
    const key = document.createElement("kbd");
    key.textContent = text;
    return key;
  }

  function setWrites(delta) {
    state.writes += delta;
    document.body.dataset.pendingWrites = String(state.writes);
  }

  function shown(label) {
    if (label === null || label === undefined) return "";
    if (state.field && state.task && state.task.summary) return state.task.summary(label);
    return Array.isArray(label) ? label.map(String).join(", ") || "(no class)" : String(label);
  }

  // A spans or boxes list in a line: the marked words with their classes, or the boxes' classes.
  function listText(card, list) {
    if (!Array.isArray(list)) return "";
    if (!list.length) return state.field === "spans" ? "no span" : "no box";
    if (state.field === "spans") {
      const points = Array.from(typeof card.text === "string" ? card.text : "");
      return list.map((s) => `“${points.slice(s.start, s.end).join("")}” ${s.label}`).join(", ");
    }
    return list.map((b) => `${b.label} at ${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.w)}×${Math.round(b.h)}`).join("; ");
  }

  // ---------------------------------------------------------------- classes and keys

  function setupClasses(project) {
    state.classes = Array.isArray(project.classes) ? project.classes.map(String) : [];
    const keys = project.keys && typeof project.keys === "object" ? project.keys : {};
    state.classes.forEach((cls) => {
      const key = typeof keys[cls] === "string" ? keys[cls].toLowerCase() : "";
      if (key && !state.keyToClass.has(key)) {
        state.keyToClass.set(key, cls);
        state.classToKey.set(cls, key);
      }
    });
    // A is accept unless a class has it (projects of ten classes or more): Enter always is.
    $("key-a").hidden = state.keyToClass.has("a");
    const group = $("classes");
    group.replaceChildren(
      ...state.classes.map((cls) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "class-button";
        button.dataset.label = cls;
        button.setAttribute("aria-pressed", "false");
        const key = state.classToKey.get(cls);
        if (key) {
          button.setAttribute("aria-keyshortcuts", key.toUpperCase());
          const badge = kbd(key.toUpperCase());
          badge.className = "key-badge";
          button.append(badge);
        }
        const name = document.createElement("span");
        name.className = "class-name";
        name.textContent = cls;
        button.append(name);
        button.addEventListener("click", () => {
          if (state.field) state.task.onClass(cls); // marks the selection, or the box's class
          else if (state.multi) toggle(cls);
          else correct(cls);
        });
        return button;
      }),
    );
    if (state.multi) {
      $("key-class-help").textContent = "choose or unchoose a class; Enter decides (unchanged: accept)";
    }
  }

  function classButtons() {
    return Array.from($("classes").querySelectorAll(".class-button"));
  }

  // ---------------------------------------------------------------- the card

  function render() {
    const card = state.current;
    $("item").hidden = !card && state.done;
    $("empty").hidden = !(state.done && !card);
    classButtons().forEach((b) => {
      b.disabled = !card;
    });
    $("btn-accept").disabled = !card;
    $("btn-send-back").disabled = !card;
    $("btn-next").disabled = !card;
    if (!card) {
      $("item-id").textContent = "";
      $("item").dataset.itemId = "";
      $("item-reasons").replaceChildren();
      $("why").replaceChildren();
      const placeholder = document.createElement("p");
      placeholder.className = "placeholder";
      placeholder.textContent = state.done ? "" : "Loading the next item…";
      $("item-body").replaceChildren(placeholder);
      $("accept-label").textContent = "";
      return;
    }
    $("item-id").textContent = String(card.item_id);
    $("item").dataset.itemId = String(card.item_id);
    $("item-reasons").replaceChildren(
      ...(card.reasons || []).map((reason) => {
        const tag = document.createElement("span");
        tag.className = `meta-part reason reason-${reason}`;
        tag.textContent = REASONS[reason] || String(reason);
        return tag;
      }),
    );
    renderWhy(card);
    renderItem(card);
    const proposed = card.proposed_label;
    if (state.field) {
      // Enter decides with the list on screen, whether or not the labelers agreed.
      $("accept-label").textContent = `(the ${state.field} shown)`;
      return;
    }
    $("accept-label").textContent = proposed === null || proposed === undefined ? "(no consensus)" : `“${shown(proposed)}”`;
    $("btn-accept").disabled = proposed === null || proposed === undefined;
    state.selected = new Set(Array.isArray(proposed) ? proposed.map(String) : []);
    classButtons().forEach((b) => {
      const current = state.multi ? state.selected.has(b.dataset.label) : b.dataset.label === proposed;
      b.setAttribute("aria-pressed", current ? "true" : "false");
      b.classList.toggle("suggested", Boolean(card.suspect) && shown(card.suspect.suggested) === b.dataset.label);
    });
  }

  // The item as its task draws it: a spans or boxes editor starts from the list the card
  // proposes, else from its first labeler's (a draft: what a refused decision sent).
  function renderItem(card) {
    if (!state.task || !state.task.render) {
      state.shownItem = null;
      renderValues(card);
      return;
    }
    let item = card;
    if (state.field) {
      const votes = Array.isArray(card.labels) ? card.labels : [];
      const first = votes.find((v) => Array.isArray(v[state.field]));
      const start = card.draft || card[state.field] || (first ? first[state.field] : null) || [];
      item = { ...card, [state.field]: start, prelabels: {} };
    }
    state.shownItem = item;
    state.task.render(item, $("item-body"));
  }

  // Who labeled what, the consensus, and why the model doubts the label.
  function renderWhy(card) {
    const parts = [];
    const labels = Array.isArray(card.labels) ? card.labels : [];
    if (labels.length) {
      const list = document.createElement("ul");
      list.className = "review-labels";
      for (const vote of labels) {
        const li = document.createElement("li");
        const who = document.createElement("span");
        who.className = "review-annotator";
        who.textContent = String(vote.annotator);
        const what = document.createElement("strong");
        what.textContent = shown(vote.label);
        li.append(who, state.field === "spans" ? " marked " : state.field ? " drew " : " labeled ", what);
        if (state.field && Array.isArray(vote[state.field])) {
          const detail = document.createElement("span");
          detail.className = "review-list";
          detail.textContent = `: ${listText(card, vote[state.field])} `;
          const use = document.createElement("button");
          use.type = "button";
          use.className = "link-button review-use";
          use.textContent = "Start from these";
          use.addEventListener("click", () => {
            if (state.current !== card) return;
            card.draft = vote[state.field];
            renderItem(card);
          });
          li.append(detail, use);
        }
        if (vote.comment) {
          const note = document.createElement("span");
          note.className = "muted";
          note.textContent = ` — “${String(vote.comment)}”`;
          li.append(note);
        }
        list.append(li);
      }
      parts.push(list);
    }
    if (card.consensus) {
      const p = document.createElement("p");
      p.className = "small";
      const c = card.consensus;
      const confidence = typeof c.confidence === "number" ? ` (${Math.round(100 * c.confidence)}% confident, ${c.method})` : "";
      p.textContent =
        c.label === null || c.label === undefined
          ? state.field
            ? `No consensus${confidence}: the labelers' ${state.field} differ. Fix the ${state.field} shown, then Enter.`
            : `No consensus${confidence}: choose the class.`
          : `Consensus: ${shown(c.label)}${confidence}.`;
      parts.push(p);
    }
    if (card.suspect) {
      const s = card.suspect;
      const p = document.createElement("p");
      p.className = "small suspect-note";
      p.textContent =
        `Model ${s.model} v${s.model_version}, trained without this label, suggests ${shown(s.suggested)}: ` +
        `it gives the label ${Math.round(100 * s.self_confidence)}% (rank ${s.rank} among the suspects).`;
      parts.push(p);
    }
    $("why").replaceChildren(...parts);
  }

  function renderValues(card) {
    const values = card.values && typeof card.values === "object" ? card.values : {};
    const columns = Array.isArray(card.columns) && card.columns.length ? card.columns : Object.keys(values);
    const list = document.createElement("dl");
    list.className = columns.length >= 9 ? "fields compact" : "fields";
    for (const column of columns) {
      const field = document.createElement("div");
      field.className = "item-field";
      const name = document.createElement("dt");
      name.textContent = String(column);
      const cell = document.createElement("dd");
      const value = values[column];
      const text = document.createElement("span");
      text.className = "value";
      text.textContent = value === null || value === undefined ? "missing" : typeof value === "string" ? value : JSON.stringify(value);
      cell.append(text);
      field.append(name, cell);
      list.append(field);
    }
    $("item-body").replaceChildren(list);
  }

  // ---------------------------------------------------------------- the queue

  let fetching = null;

  function refill() {
    if (!fetching) {
      fetching = (async () => {
        await state.pending; // after our decisions, so an item just decided is not shown again
        await fetchNext();
      })().finally(() => {
        fetching = null;
      });
    }
    return fetching;
  }

  async function fetchNext() {
    let data;
    try {
      data = await api("GET", `/api/review/next?count=${Math.min(20, FETCH + state.later.size)}`);
    } catch (error) {
      report(error);
      return;
    }
    renderTotals(data.totals || {});
    const held = new Set(state.buffer.map((c) => c.item_id));
    if (state.current) held.add(state.current.item_id);
    for (const card of Array.isArray(data.items) ? data.items : []) {
      if (held.has(card.item_id) || state.later.has(card.item_id) || decidedHere(card.item_id)) continue;
      state.buffer.push(card);
      held.add(card.item_id);
    }
    state.done = !state.current && state.buffer.length === 0;
    if (!state.current) showNext();
  }

  function decidedHere(itemId) {
    return state.decisions.some((d) => d.item_id === itemId && d.pending);
  }

  function renderTotals(totals) {
    const n = (v) => formatCount(typeof v === "number" ? v : 0);
    $("queue-size").textContent =
      `In the queue: ${n(totals.suspect)} likely label errors, ${n(totals.disagreement)} disagreements, ` +
      `${n(totals.sample)} spot checks.`;
  }

  function showNext() {
    state.current = state.buffer.shift() || null;
    closeSendBack();
    $("comment").value = "";
    if (!state.current && !state.done) {
      render();
      refill();
      return;
    }
    render();
    if (state.buffer.length < 2) refill();
  }

  // ---------------------------------------------------------------- decisions

  function commentValue() {
    const text = $("comment").value.trim();
    return text || null;
  }

  function decide(action, body, what) {
    const card = state.current;
    if (!card) return;
    const entry = { item_id: card.item_id, what, pending: true };
    state.decisions.unshift(entry);
    renderDecisions();
    const payload = { ...body, comment: commentValue(), seen_event_id: card.seen_event_id };
    setWrites(1);
    state.pending = state.pending
      .then(() => api("POST", decisionPath(card.item_id, action), payload))
      .then(
        (answer) => {
          entry.pending = false;
          entry.what = describe(answer);
        },
        (error) => {
          entry.pending = false;
          entry.failed = true;
          if (state.field && Array.isArray(body[state.field])) card.draft = body[state.field]; // kept on screen
          failed(error, card);
        },
      )
      .finally(() => {
        setWrites(-1);
        renderDecisions();
      });
    showNext();
  }

  function describe(answer) {
    if (answer.review === "sent_back") return "sent back";
    if (answer.review === "accepted") return `accepted ${shown(answer.label)}`;
    return `corrected to ${shown(answer.label)}`;
  }

  function failed(error, card) {
    if (error instanceof ApiError && error.status === 401) return;
    if (error instanceof ApiError && error.status === 409) {
      showMessage(`Item ${card.item_id}: ${error.detail}`, "info");
      return;
    }
    showMessage(`Your decision on item ${card.item_id} was not saved: ${error instanceof ApiError ? error.detail : error}`);
    if (error instanceof ApiError && error.status === 422) {
      // Show it again so nothing is lost silently.
      if (state.current) state.buffer.unshift(state.current);
      state.current = card;
      render();
    }
  }

  function accept() {
    const card = state.current;
    if (!card) return;
    if (state.field) {
      decideList(state.task.value());
      return;
    }
    if (card.proposed_label === null || card.proposed_label === undefined) {
      showMessage("Its labelers disagree and there is no consensus to accept: press the key of the right class.", "info");
      return;
    }
    if (state.multi && !sameSelection(card)) {
      correctSelection();
      return;
    }
    decide("accept", {}, `accepting ${shown(card.proposed_label)}`);
  }

  // Spans and boxes: the list on screen decides (the item's own list: the server records an accept).
  function decideList(fields) {
    if (!state.current || !fields || !Array.isArray(fields[state.field])) return;
    const n = fields[state.field].length;
    const noun = state.field === "spans" ? (n === 1 ? "span" : "spans") : n === 1 ? "box" : "boxes";
    decide("correct", { [state.field]: fields[state.field] }, `deciding ${n} ${noun}`);
  }

  function correct(cls) {
    const card = state.current;
    if (!card) return;
    if (cls === card.proposed_label) {
      decide("accept", {}, `accepting ${cls}`);
      return;
    }
    decide("correct", { label: cls }, `correcting to ${cls}`);
  }

  function toggle(cls) {
    if (!state.current) return;
    if (state.selected.has(cls)) state.selected.delete(cls);
    else state.selected.add(cls);
    classButtons().forEach((b) => b.setAttribute("aria-pressed", state.selected.has(b.dataset.label) ? "true" : "false"));
  }

  function sameSelection(card) {
    const proposed = new Set(Array.isArray(card.proposed_label) ? card.proposed_label : []);
    return proposed.size === state.selected.size && [...proposed].every((c) => state.selected.has(c));
  }

  function correctSelection() {
    const chosen = state.classes.filter((c) => state.selected.has(c));
    decide("correct", { labels: chosen }, `correcting to ${chosen.join(", ") || "(no class)"}`);
  }

  function sendBack() {
    if (!state.current) return;
    if (!commentValue()) {
      openSendBack();
      return;
    }
    closeSendBack();
    decide("send-back", {}, "sending back");
  }

  function openSendBack() {
    state.sendBack = true;
    $("comment-help").textContent = "(what the labeler should look at: Enter sends the item back, Esc cancels)";
    $("comment").classList.add("attention");
    $("comment").focus();
  }

  function closeSendBack() {
    state.sendBack = false;
    $("comment-help").textContent = "(optional with a decision; a send-back needs one: the next labeler reads it)";
    $("comment").classList.remove("attention");
  }

  function later() {
    if (!state.current) return;
    state.later.add(state.current.item_id);
    showNext();
  }

  function renderDecisions() {
    const items = state.decisions.slice(0, RECENT_SHOWN).map((d) => {
      const li = document.createElement("li");
      li.className = "recent-item";
      const id = document.createElement("span");
      id.className = "recent-id";
      id.textContent = String(d.item_id);
      const what = document.createElement("span");
      what.className = `recent-label${d.failed ? " skipped" : ""}`;
      what.textContent = d.failed ? "not saved" : d.pending ? `${d.what}…` : d.what;
      li.append(id, what);
      return li;
    });
    $("decisions").replaceChildren(...items);
    $("decisions-empty").hidden = items.length > 0;
  }

  // ---------------------------------------------------------------- keyboard

  function isTyping(target) {
    return target instanceof HTMLElement && (target.isContentEditable || target.matches("textarea, input, select"));
  }

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape") {
        event.preventDefault();
        closeSendBack();
        event.target.blur();
        $("item").focus({ preventScroll: true });
      } else if (event.key === "Enter" && !event.shiftKey && state.sendBack) {
        event.preventDefault();
        event.target.blur();
        $("item").focus({ preventScroll: true });
        sendBack();
      }
      return;
    }
    // The task module first: the spans cursor, the boxes, the player; Enter decides with them.
    if (state.task && state.task.onKey && state.task.onKey(event)) return;
    const key = event.key;
    const onControl = event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement;
    if (key === "Enter" && !onControl && !event.repeat) {
      event.preventDefault();
      accept();
      return;
    }
    if (key === "Enter" || key === " " || key === "Tab") return; // focused buttons and links act
    if (key === "ArrowRight") {
      event.preventDefault();
      later();
      return;
    }
    if (key === "Escape") {
      dismissMessages();
      return;
    }
    if (event.repeat) return; // a held key must not decide a row of items
    const lower = key.length === 1 ? key.toLowerCase() : "";
    if (state.keyToClass.has(lower)) {
      event.preventDefault();
      const cls = state.keyToClass.get(lower);
      if (state.multi) toggle(cls);
      else correct(cls);
    } else if (lower === "a") {
      event.preventDefault();
      accept();
    } else if (lower === "s") {
      event.preventDefault();
      sendBack();
    } else if (lower === "/") {
      event.preventDefault();
      $("comment").focus();
    }
  }

  // ---------------------------------------------------------------- task types

  function setupTask(project) {
    const modules = window.AL.tasks || {};
    const task = modules[project.task] || null;
    document.body.dataset.task = project.task || "classification";
    if (!task || !task.setup) return;
    state.task = task;
    state.field = project.task === "spans" || project.task === "boxes" ? project.task : null;
    task.setup({
      classes: () => state.classes,
      classToKey: (cls) => state.classToKey.get(cls),
      keyToClass: (key) => state.keyToClass.get(key),
      current: () => (state.current && state.shownItem ? { item: state.shownItem } : null),
      save: decideList,
      renderValues,
      message: showMessage,
      dismiss: dismissMessages,
    });
    if (state.field) {
      $("key-class-help").textContent =
        state.field === "spans" ? "mark the selected words with that class" : "the selected box's class, and the next box's";
      $("key-a").hidden = true; // A may be a class key here; Enter decides
    }
  }

  // ---------------------------------------------------------------- start

  async function start() {
    document.body.dataset.pendingWrites = "0";
    const session = await startStaffPage("Review");
    if (!session) return;
    const project = session.project || {};
    state.multi = project.multi_label === true;
    setupClasses(project);
    setupTask(project);
    $("btn-accept").addEventListener("click", accept);
    $("btn-send-back").addEventListener("click", sendBack);
    $("btn-next").addEventListener("click", later);
    $("btn-recheck").addEventListener("click", () => {
      state.done = false;
      state.later.clear();
      render();
      refill();
    });
    document.addEventListener("keydown", onKey);
    render();
    await refill();
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
