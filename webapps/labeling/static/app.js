// The labeling page: shows one leased item at a time, sends labels, skips, undo and
// heartbeats to the API, keeps a few items prefetched so the next one appears at once.
// Text from the data is only ever set through textContent, never parsed as HTML.
"use strict";

(() => {
  const PREFETCH = 3; // items asked for at a time; the server returns our leased ones first
  const HEARTBEAT_MS = 60_000;
  const RETRY_MS = 15_000; // when no item is free right now
  const RECENT_SHOWN = 8;
  // Items with more columns than this show their fields in two columns, long texts clamped
  // to a few lines with a control to show them whole: the item and the classes fit a
  // laptop's screen.
  const COMPACT_FROM = 9;
  const HINT_STORAGE = "active-labeling.show-hint";
  const BANNERS = {
    exhausted: "The ranked queue is done: items now come in dataset order.",
    none: "No ranked queue yet: items come in dataset order until the query sampler ranks them.",
  };
  // The class keys: 1..9 then letters, leaving out the letters that are commands.
  const KEY_POOL = "123456789abcdefgijklmnopqrtuvwxy".split("");

  const $ = window.AL.$;

  const state = {
    project: null,
    classes: [],
    multi: false, // multi-label project: class keys toggle, Enter saves
    selected: new Set(), // multi-label: the classes chosen for the item on screen
    keyToClass: new Map(),
    classToKey: new Map(),
    current: null, // {item, source: "queue" | "back", shownAt, comment}
    buffer: [], // prefetched items, leased to us, shown next
    inFlight: new Set(), // item ids whose label or skip has been sent and not yet answered
    pending: Promise.resolve(), // the chain of writes: they reach the server in order
    writes: 0,
    backList: null, // my history, one entry per item, newest first
    backIndex: -1, // -1: the queue; 0: the last item I touched; 1: the one before...
    busy: false, // a navigation (back, undo) is loading
    done: false,
    hint: readHint(),
    retryTimer: 0,
    task: null, // spans, boxes, audio: the module of that task type (tasks/*.js), else null
  };

  // ---------------------------------------------------------------- the API (common.js)

  const { api, ApiError, showMessage, report, dismissMessages } = window.AL;

  const itemPath = (id, action) => `/api/items/${encodeURIComponent(id)}${action ? "/" + action : ""}`;

  // ---------------------------------------------------------------- small helpers

  function newSessionId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  const SESSION_ID = newSessionId();

  function readHint() {
    try {
      return window.localStorage.getItem(HINT_STORAGE) === "1";
    } catch {
      return false;
    }
  }

  function writeHint(on) {
    try {
      window.localStorage.setItem(HINT_STORAGE, on ? "1" : "0");
    } catch {
      // private mode: the choice lasts for this page only
    }
  }

  function formatNumber(value, digits = 4) {
    return value.toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function formatCount(value, digits = 0) {
    return typeof value === "number" && Number.isFinite(value) ? formatNumber(value, digits) : "–";
  }

  function formatValue(value) {
    if (value === null || value === undefined || (typeof value === "number" && Number.isNaN(value))) {
      return { text: "missing", kind: "missing" };
    }
    if (typeof value === "number") return { text: formatNumber(value), kind: "number" };
    if (typeof value === "boolean") return { text: String(value), kind: "boolean" };
    if (typeof value === "string") return { text: value, kind: value.length > 80 ? "long" : "text" };
    return { text: JSON.stringify(value), kind: "text" };
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  // Only same-origin, http(s) or data: URLs become an image; anything else is ignored.
  function safeImageUrl(raw) {
    if (typeof raw !== "string" || !raw) return null;
    let url;
    try {
      url = new URL(raw, window.location.href);
    } catch {
      return null;
    }
    if (url.protocol === "data:") return raw.startsWith("data:image/") ? url.href : null;
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return url.href;
  }

  function kbd(text) {
    const key = document.createElement("kbd");
    key.textContent = text;
    return key;
  }

  function setWrites(delta) {
    state.writes += delta;
    document.body.dataset.pendingWrites = String(state.writes);
  }

  // ---------------------------------------------------------------- classes and keys

  function setupClasses(project) {
    state.classes = Array.isArray(project.classes) ? project.classes.map(String) : [];
    const serverKeys = project.keys && typeof project.keys === "object" ? project.keys : null;
    state.classes.forEach((cls) => {
      let key = serverKeys && typeof serverKeys[cls] === "string" ? serverKeys[cls].toLowerCase() : "";
      if (!key || state.keyToClass.has(key)) key = KEY_POOL.find((k) => !state.keyToClass.has(k)) || "";
      if (key) {
        state.keyToClass.set(key, cls);
        state.classToKey.set(cls, key);
      }
    });

    const group = $("classes");
    group.replaceChildren();
    state.classes.forEach((cls) => {
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
      const suggestion = document.createElement("span");
      suggestion.className = "suggested-mark";
      suggestion.textContent = "model";
      button.append(name, suggestion);
      button.addEventListener("click", () => {
        if (state.task && state.task.onClass && state.task.onClass(cls)) return; // task types
        if (state.multi) toggle(cls);
        else label(cls);
      });
      group.append(button);
    });
    if (state.multi) {
      const save = document.createElement("button");
      save.type = "button";
      save.id = "btn-save";
      save.className = "button save-button";
      save.setAttribute("aria-keyshortcuts", "Enter");
      save.append(kbd("Enter"), document.createTextNode(" Save the chosen classes"));
      save.addEventListener("click", saveSelection);
      group.append(save);
      $("key-class-help").textContent = "choose or unchoose a class; Enter saves them";
    }
    if (!state.classes.length) {
      showMessage("This project declares no classes: an admin must set them in project.toml.");
    }
  }

  function classButtons() {
    return Array.from($("classes").querySelectorAll(".class-button"));
  }

  // ---------------------------------------------------------------- the item card

  let renderedEntry = null;

  function render() {
    const entry = state.current;
    const card = $("item");
    const empty = $("empty");
    const hasItem = Boolean(entry);
    const waiting = !hasItem && !state.done;
    card.hidden = !hasItem && state.done;
    empty.hidden = !(state.done && !hasItem);
    card.dataset.source = hasItem ? entry.source : "none";
    card.setAttribute("aria-busy", waiting || state.busy ? "true" : "false");
    $("back-notice").hidden = !(hasItem && entry.source === "back");
    $("btn-return").hidden = !(hasItem && entry.source === "back");
    $("btn-skip").disabled = !hasItem;
    classButtons().forEach((b) => {
      b.disabled = !hasItem;
    });
    if ($("btn-save")) $("btn-save").disabled = !hasItem;
    renderHint();
    // The card's content is rebuilt only when another item comes on screen, so a comment
    // being written survives a busy spell or a failed undo.
    if (entry === renderedEntry && hasItem) return;
    renderedEntry = entry;
    if (!hasItem) {
      renderSentBack(null);
      $("item-id").textContent = "";
      card.dataset.itemId = "";
      $("item-meta").replaceChildren();
      const placeholder = document.createElement("p");
      placeholder.className = "placeholder";
      placeholder.textContent = state.done ? "" : "Loading the next item…";
      $("item-body").replaceChildren(placeholder);
      return;
    }
    const item = entry.item;
    $("item-id").textContent = String(item.item_id);
    card.dataset.itemId = String(item.item_id);
    renderSentBack(item.sent_back);
    renderMeta(item, entry.source);
    if (state.task && state.task.render) state.task.render(item, $("item-body")); // task types
    else renderValues(item);
    if (state.multi) {
      const current = Array.isArray(item.current_label) ? item.current_label.map(String) : [];
      state.selected = new Set(current);
      renderSelection();
    } else {
      classButtons().forEach((b) => {
        const isCurrent = item.current_label !== null && item.current_label !== undefined && b.dataset.label === item.current_label;
        b.setAttribute("aria-pressed", isCurrent ? "true" : "false");
      });
    }
    $("comment").value = entry.comment || "";
  }

  // A reviewer sent the item back to labeling: their comment, as text.
  function renderSentBack(note) {
    const box = $("sent-back");
    box.hidden = !note;
    box.textContent = note ? `Sent back by reviewer ${note.reviewer}: ${note.comment || ""}` : "";
  }

  function renderMeta(item, source) {
    const parts = [];
    const add = (label, value, className) => {
      const span = document.createElement("span");
      span.className = `meta-part${className ? " " + className : ""}`;
      if (label) {
        const name = document.createElement("span");
        name.className = "meta-label";
        name.textContent = label;
        span.append(name, " ");
      }
      const strong = document.createElement("span");
      strong.className = "meta-value";
      strong.textContent = value;
      span.append(strong);
      parts.push(span);
    };
    if (item.dataset) add("dataset", String(item.dataset));
    if (typeof item.rank === "number") add("rank", `#${formatNumber(item.rank, 0)}`);
    if (typeof item.score === "number") add("score", formatNumber(item.score));
    if (item.current_label !== null && item.current_label !== undefined) {
      const shown = Array.isArray(item.current_label)
        ? item.current_label.map(String).join(", ") || "(no class)"
        : String(item.current_label);
      add(Array.isArray(item.current_label) ? "current labels" : "current label", shown, "current-label");
    }
    if (source === "back") add("", "earlier item", "tag");
    $("item-meta").replaceChildren(...parts);
  }

  function renderValues(item) {
    const values = item.values && typeof item.values === "object" ? item.values : {};
    let columns = Array.isArray(item.columns) && item.columns.length ? item.columns : null;
    if (!columns && state.project && Array.isArray(state.project.columns)) columns = state.project.columns;
    if (!columns) columns = Object.keys(values);
    const media = item.media && typeof item.media === "object" ? item.media : {};
    const compact = columns.length >= COMPACT_FROM;

    const list = document.createElement("dl");
    list.className = compact ? "fields compact" : "fields";
    const clamped = [];
    columns.forEach((column) => {
      const field = document.createElement("div");
      field.className = "item-field";
      const name = document.createElement("dt");
      name.textContent = String(column);
      name.title = String(column);
      const cell = document.createElement("dd");
      const url = safeImageUrl(media[column]);
      if (url) {
        const img = document.createElement("img");
        img.className = "media";
        img.alt = String(column);
        img.decoding = "async";
        img.src = url;
        cell.append(img);
        field.classList.add("wide");
      }
      const formatted = formatValue(values[column]);
      const text = document.createElement("span");
      text.className = `value ${formatted.kind}`;
      text.textContent = formatted.text;
      cell.append(text);
      if (compact && formatted.kind === "long") {
        field.classList.add("wide");
        text.classList.add("clamped");
        text.id = `value-${clamped.length}`;
        const more = document.createElement("button");
        more.type = "button";
        more.className = "link-button small more";
        more.setAttribute("aria-expanded", "false");
        more.setAttribute("aria-controls", text.id);
        more.textContent = "Show all";
        more.addEventListener("click", () => toggleClamp(text, more));
        cell.append(more);
        clamped.push([text, more]);
      }
      field.append(name, cell);
      list.append(field);
    });
    $("item-body").replaceChildren(list);
    // Only texts that overflow their lines get the control (measured once laid out).
    hideUnneededControls(clamped);
  }

  function toggleClamp(text, button) {
    const open = button.getAttribute("aria-expanded") !== "true";
    text.classList.toggle("expanded", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "Show less" : "Show all";
  }

  function hideUnneededControls(pairs) {
    window.requestAnimationFrame(() => {
      for (const [text, button] of pairs) {
        button.hidden = text.scrollHeight <= text.clientHeight + 1;
      }
    });
  }

  // The admin's task description and guidance per class, as text (never as HTML).
  function renderGuide(guide) {
    const task = guide && typeof guide.task === "string" ? guide.task : "";
    const classes = guide && guide.classes && typeof guide.classes === "object" ? guide.classes : {};
    const explained = state.classes.filter((cls) => typeof classes[cls] === "string" && classes[cls]);
    $("task").hidden = !task && !explained.length;
    $("task-text").textContent = task;
    $("task-text").hidden = !task;
    if (task) hideUnneededControls([[$("task-text"), $("task-more")]]);
    const entries = explained.map((cls) => {
      const row = document.createElement("div");
      const term = document.createElement("dt");
      const key = state.classToKey.get(cls);
      if (key) {
        const badge = kbd(key.toUpperCase());
        term.append(badge, " ");
      }
      term.append(document.createTextNode(cls));
      const meaning = document.createElement("dd");
      meaning.textContent = classes[cls];
      row.append(term, meaning);
      return row;
    });
    $("class-guide-list").replaceChildren(...entries);
    $("class-guide").hidden = !entries.length;
    classButtons().forEach((button) => {
      const text = classes[button.dataset.label];
      if (typeof text === "string" && text) button.title = text;
      else button.removeAttribute("title");
    });
  }

  function renderHint() {
    const button = $("btn-hint");
    button.setAttribute("aria-pressed", state.hint ? "true" : "false");
    const hint = $("hint");
    const item = state.current && state.current.item;
    const prediction = item && item.prediction;
    classButtons().forEach((b) => b.classList.remove("suggested"));
    if (!state.hint || !item) {
      hint.hidden = true;
      return;
    }
    hint.hidden = false;
    if (!prediction || prediction.label === null || prediction.label === undefined) {
      hint.className = "hint none";
      hint.textContent = "No model prediction for this item.";
      return;
    }
    hint.className = "hint";
    const predicted = String(prediction.label);
    const parts = [document.createTextNode("Model hint: "), document.createElement("strong")];
    parts[1].textContent = predicted;
    if (typeof prediction.confidence === "number") {
      parts.push(document.createTextNode(` · ${Math.round(prediction.confidence * 100)}% confident`));
    }
    if (item.model_version) {
      const version = document.createElement("span");
      version.className = "muted";
      version.textContent = ` · model ${item.model_version}`;
      parts.push(version);
    }
    hint.replaceChildren(...parts);
    classButtons().forEach((b) => b.classList.toggle("suggested", b.dataset.label === predicted));
  }

  function show(entry) {
    entry.shownAt = performance.now();
    state.current = entry;
    render();
  }

  function showNextFromQueue() {
    state.backIndex = -1;
    state.backList = null;
    const next = state.buffer.shift();
    if (next) {
      show({ item: next, source: "queue" });
    } else {
      state.current = null;
      render();
    }
    refill();
  }

  function flash(cls) {
    const button = classButtons().find((b) => b.dataset.label === cls);
    if (!button) return;
    button.classList.remove("flash");
    void button.offsetWidth; // restart the animation
    button.classList.add("flash");
  }

  // ---------------------------------------------------------------- writes

  function leadTime(entry) {
    return Math.max(0, Math.round(performance.now() - entry.shownAt));
  }

  function commentValue() {
    const text = $("comment").value.trim();
    return text ? text : null;
  }

  function label(cls) {
    if (!state.current || state.busy) return;
    flash(cls);
    send("label", { label: cls });
  }

  // Multi-label: class keys choose and unchoose; Enter (or the Save button) sends them.
  function toggle(cls) {
    if (!state.current || state.busy) return;
    if (state.selected.has(cls)) state.selected.delete(cls);
    else state.selected.add(cls);
    renderSelection();
  }

  function renderSelection() {
    classButtons().forEach((b) => {
      b.setAttribute("aria-pressed", state.selected.has(b.dataset.label) ? "true" : "false");
    });
  }

  function saveSelection() {
    if (!state.current || state.busy) return;
    const chosen = state.classes.filter((cls) => state.selected.has(cls));
    chosen.forEach(flash);
    send("label", { labels: chosen });
  }

  function skip() {
    if (!state.current || state.busy) return;
    send("skip", {});
  }

  // Sends the action for the item on screen and shows the next item at once. The writes
  // are chained so they reach the server in the order the labeler made them.
  function send(action, fields) {
    const entry = state.current;
    const id = entry.item.item_id;
    const body = { ...fields, comment: commentValue(), lead_time_ms: leadTime(entry), session: SESSION_ID };
    state.inFlight.add(id);
    setWrites(1);
    state.pending = state.pending
      .then(() => api("POST", itemPath(id, action), body))
      .then(
        () => {
          state.inFlight.delete(id);
          refreshSide();
        },
        (error) => {
          state.inFlight.delete(id);
          writeFailed(error, entry, action);
        },
      )
      .finally(() => setWrites(-1));
    $("comment").value = "";
    showNextFromQueue();
  }

  function writeFailed(error, entry, action) {
    const id = entry.item.item_id;
    if (error instanceof ApiError && error.status === 401) return;
    if (error instanceof ApiError && error.status === 409) {
      showMessage(`Item ${id} is being labeled by someone else: it was left out.`, "info");
      refill();
      return;
    }
    const what = action === "skip" ? "skip" : "label";
    showMessage(`Your ${what} of item ${id} was not saved: ${error instanceof ApiError ? error.detail : error}`);
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) return;
    // Show it again so nothing is lost silently; the item on screen goes back to the queue.
    if (state.current && state.current.source === "queue") state.buffer.unshift(state.current.item);
    show({ item: entry.item, source: entry.source, comment: entry.comment });
  }

  // ---------------------------------------------------------------- prefetch

  let refilling = null;
  let refillAgain = false;

  function refill() {
    if (refilling) {
      refillAgain = true;
      return refilling;
    }
    refilling = (async () => {
      do {
        refillAgain = false;
        await state.pending; // after our writes, so items just labeled are not handed back
        await fetchNext();
      } while (refillAgain);
    })().finally(() => {
      refilling = null;
    });
    return refilling;
  }

  async function fetchNext() {
    clearTimeout(state.retryTimer);
    let data;
    try {
      // The model's guess costs the server a prediction: ask for it only when shown.
      data = await api("GET", `/api/items/next?count=${PREFETCH}&hint=${state.hint ? 1 : 0}`);
    } catch (error) {
      report(error);
      if (!state.current) state.retryTimer = setTimeout(refill, RETRY_MS);
      return;
    }
    const items = Array.isArray(data.items) ? data.items : [];
    setBanner(data);
    const held = new Set(state.buffer.map((i) => i.item_id));
    if (state.current) held.add(state.current.item.item_id);
    for (const item of items) {
      if (held.has(item.item_id) || state.inFlight.has(item.item_id)) continue;
      state.buffer.push(item);
      held.add(item.item_id);
    }
    state.done = Boolean(data.done) && items.length === 0;
    if (!state.current) {
      const next = state.buffer.shift();
      if (next) {
        show({ item: next, source: "queue" });
      } else {
        render();
        if (!state.done) {
          showMessage("No item is free right now: the others are being labeled. Trying again shortly.", "info");
          state.retryTimer = setTimeout(refill, RETRY_MS);
        }
      }
    }
  }

  // Whether items come in dataset order, and why: the queue is done, or there never was one.
  function setBanner(answer) {
    const banner = $("banner");
    const which = answer.has_queue === false ? "none" : answer.queue_exhausted === true ? "exhausted" : "";
    banner.hidden = !which;
    banner.dataset.kind = which;
    if (which && banner.textContent !== BANNERS[which]) banner.textContent = BANNERS[which];
  }

  // ---------------------------------------------------------------- heartbeats

  async function heartbeat() {
    if (document.visibilityState !== "visible") return; // nobody is looking: let leases lapse
    const current = state.current && state.current.source === "queue" ? state.current.item.item_id : null;
    const ids = state.buffer.map((i) => i.item_id);
    if (current !== null) ids.unshift(current);
    for (const id of ids) {
      try {
        await api("POST", itemPath(id, "heartbeat"));
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 409) continue;
        // The lease went to someone else: drop the item.
        state.buffer = state.buffer.filter((i) => i.item_id !== id);
        if (state.current && state.current.item.item_id === id && state.current.source === "queue") {
          showMessage(`Your hold on item ${id} expired and someone else took it: showing the next item.`, "info");
          showNextFromQueue();
        }
      }
    }
    if (state.buffer.length < PREFETCH - 1) refill();
  }

  // ---------------------------------------------------------------- back, forward, undo

  function distinctHistory(events) {
    const seen = new Set();
    const list = [];
    for (const event of events || []) {
      if (seen.has(event.item_id)) continue;
      seen.add(event.item_id);
      if (event.status === "undone") continue;
      list.push(event);
    }
    return list;
  }

  async function navigate(work) {
    if (state.busy) return;
    state.busy = true;
    render();
    try {
      await state.pending;
      await work();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) showMessage(error.detail, "info");
      else report(error);
    } finally {
      state.busy = false;
      render();
    }
  }

  async function openEarlier(index) {
    if (!state.backList || state.backIndex === -1) {
      const data = await api("GET", "/api/history?limit=20");
      state.backList = distinctHistory(data.items);
    }
    if (index >= state.backList.length) {
      showMessage(state.backList.length ? "No earlier item in your recent history." : "You have not labeled anything yet.", "info");
      return;
    }
    const event = state.backList[index];
    const item = await api("GET", itemPath(event.item_id));
    if (state.current && state.current.source === "queue") state.buffer.unshift(state.current.item);
    state.backIndex = index;
    show({ item, source: "back", comment: event.comment || "" });
  }

  function goBack() {
    return navigate(() => openEarlier(state.backIndex + 1));
  }

  function goForward() {
    if (!state.current || state.current.source !== "back") return undefined;
    if (state.backIndex <= 0) return returnToQueue();
    return navigate(() => openEarlier(state.backIndex - 1));
  }

  function returnToQueue() {
    if (!state.current || state.current.source !== "back" || state.busy) return;
    showNextFromQueue();
  }

  function undo() {
    return navigate(async () => {
      const data = await api("POST", `/api/undo?session=${encodeURIComponent(SESSION_ID)}`);
      const item = data.item;
      const undone = data.undone || {};
      state.buffer = state.buffer.filter((i) => i.item_id !== item.item_id);
      if (state.current && state.current.source === "queue" && state.current.item.item_id !== item.item_id) {
        state.buffer.unshift(state.current.item);
      }
      state.backIndex = -1;
      state.backList = null;
      show({ item, source: "queue" });
      const what = undone.status === "skipped" ? "skip of" : `label “${summary(undone.label)}” on`;
      showMessage(`Undone: your ${what} item ${item.item_id}.`, "info");
      refreshSide();
    });
  }

  function toggleHint() {
    state.hint = !state.hint;
    writeHint(state.hint);
    renderHint();
    const item = state.current && state.current.item;
    if (state.hint && item && !item.prediction) {
      // Fetched without the hint: ask for this item's prediction now.
      api("GET", `${itemPath(item.item_id)}?hint=1`)
        .then((fresh) => {
          if (state.current && state.current.item === item) {
            item.prediction = fresh.prediction;
            renderHint();
          }
        })
        .catch(report);
    }
  }

  // ---------------------------------------------------------------- progress and history

  let sideRunning = null;
  let sideAgain = false;

  function refreshSide() {
    if (sideRunning) {
      sideAgain = true;
      return;
    }
    sideRunning = (async () => {
      do {
        sideAgain = false;
        await Promise.all([refreshProgress(), refreshRecent()]);
      } while (sideAgain);
    })().finally(() => {
      sideRunning = null;
    });
  }

  async function refreshProgress() {
    let p;
    try {
      p = await api("GET", `/api/progress?session=${encodeURIComponent(SESSION_ID)}`);
    } catch (error) {
      report(error);
      return;
    }
    $("p-mine-session").textContent = formatCount(p.mine_session);
    $("p-mine-total").textContent = formatCount(p.mine_total);
    $("p-total").textContent = formatCount(p.total_labeled);
    $("p-left").textContent = formatCount(p.left_in_queue);
    $("p-rate").textContent = formatCount(p.labels_per_hour, 1);
    if (typeof p.queue_exhausted === "boolean") setBanner(p);
  }

  async function refreshRecent() {
    let data;
    try {
      data = await api("GET", "/api/history?limit=20");
    } catch (error) {
      report(error);
      return;
    }
    const list = distinctHistory(data.items).slice(0, RECENT_SHOWN);
    const items = list.map((event, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "recent-item";
      button.title = "Open this item to change its label";
      const id = document.createElement("span");
      id.className = "recent-id";
      id.textContent = String(event.item_id);
      const result = document.createElement("span");
      result.className = `recent-label ${event.status === "skipped" ? "skipped" : ""}`;
      result.textContent = event.status === "skipped" ? "skipped" : summary(event.label);
      const time = document.createElement("span");
      time.className = "recent-time";
      time.textContent = formatTime(event.created_at);
      button.append(id, result, time);
      button.addEventListener("click", () => {
        navigate(async () => {
          state.backList = null;
          state.backIndex = -1;
          await openEarlier(index);
        });
      });
      li.append(button);
      return li;
    });
    $("recent").replaceChildren(...items);
    $("recent-empty").hidden = items.length > 0;
  }

  // ---------------------------------------------------------------- keyboard

  function isTyping(target) {
    return target instanceof HTMLElement && (target.isContentEditable || target.matches("textarea, input, select"));
  }

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) {
      // The comment box keeps every key, Enter included; Escape leaves it.
      if (event.key === "Escape") {
        event.preventDefault();
        event.target.blur();
        $("item").focus({ preventScroll: true });
      }
      return;
    }
    // ---- task types (spans.js, boxes.js, audio.js) take their keys first
    if (state.task && state.task.onKey && state.task.onKey(event)) return;
    const key = event.key;
    const onControl = event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement;
    if (state.multi && key === "Enter" && !onControl && !event.repeat) {
      event.preventDefault();
      saveSelection();
      return;
    }
    if (key === "Enter" || key === " " || key === "Tab") return; // focused buttons and links act
    if (key === "ArrowLeft") {
      event.preventDefault();
      goBack();
      return;
    }
    if (key === "ArrowRight") {
      event.preventDefault();
      goForward();
      return;
    }
    if (key === "Escape") {
      if (state.current && state.current.source === "back") returnToQueue();
      else dismissMessages();
      return;
    }
    if (event.repeat) return; // a held key must not label a row of items
    const lower = key.length === 1 ? key.toLowerCase() : "";
    if (state.keyToClass.has(lower)) {
      event.preventDefault();
      const cls = state.keyToClass.get(lower);
      if (state.multi) toggle(cls);
      else label(cls);
      return;
    }
    if (lower === "s") {
      event.preventDefault();
      skip();
    } else if (lower === "z") {
      event.preventDefault();
      undo();
    } else if (lower === "h") {
      event.preventDefault();
      toggleHint();
    } else if (lower === "/") {
      event.preventDefault();
      $("comment").focus();
    }
  }

  // ---------------------------------------------------------------- task types
  // A task module (spans.js, boxes.js, audio.js) registers itself in window.AL.tasks; it
  // draws the item, takes its keys first, and saves through ctx.save (the same chained
  // write, undo, back, skip and leases as a class label).

  function setupTask(project) {
    const modules = window.AL.tasks || {};
    const task = modules[project.task];
    state.task = task || null;
    document.body.dataset.task = project.task || "classification";
    if (!task || !task.setup) return;
    task.setup({
      classes: () => state.classes,
      classToKey: (cls) => state.classToKey.get(cls),
      keyToClass: (key) => state.keyToClass.get(key),
      current: () => state.current,
      save: (fields) => {
        if (!state.current || state.busy) return;
        send("label", fields);
      },
      renderValues,
      message: showMessage,
      dismiss: dismissMessages,
    });
  }

  function summary(label) {
    if (state.task && state.task.summary) return state.task.summary(label);
    return String(label);
  }

  // ---------------------------------------------------------------- start

  function wireButtons() {
    $("btn-back").addEventListener("click", goBack);
    $("btn-skip").addEventListener("click", skip);
    $("btn-undo").addEventListener("click", undo);
    $("btn-hint").addEventListener("click", toggleHint);
    $("btn-return").addEventListener("click", returnToQueue);
    $("task-more").addEventListener("click", () => toggleClamp($("task-text"), $("task-more")));
    $("btn-recheck").addEventListener("click", () => {
      state.done = false;
      render();
      refill();
    });
    $("logout").addEventListener("click", window.AL.logout);
    document.addEventListener("keydown", onKey);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") refreshSide();
    });
    setInterval(heartbeat, HEARTBEAT_MS);
  }

  async function start() {
    document.body.dataset.pendingWrites = "0";
    let session;
    try {
      session = await api("GET", "/api/session");
    } catch (error) {
      report(error);
      return;
    }
    window.AL.setCsrf(session.csrf_token);
    state.project = session.project || {};
    state.multi = state.project.multi_label === true;
    setupTask(state.project);
    const name = state.project.name ? String(state.project.name) : "Labeling";
    $("project-name").textContent = name;
    document.title = `${name} · Labeling`;
    $("user-name").textContent = session.user ? String(session.user) : "";
    $("admin-link").hidden = session.role !== "admin" && session.role !== "reviewer";
    $("review-link").hidden = session.role !== "admin" && session.role !== "reviewer";
    $("dashboard-link").hidden = session.role !== "admin" && session.role !== "reviewer";
    setupClasses(state.project);
    renderGuide(state.project.guide);
    wireButtons();
    render();
    refreshSide();
    await refill();
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
