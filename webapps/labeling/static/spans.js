// Spans: mark stretches of a text with classes (named entities), snapped to the tokens the
// server sent. Mouse: press on a token and drag to another, then a class key or button.
// Keys (text focused): ← → move the token cursor (in reading order: mirrored in
// right-to-left text), Shift extends the selection, a class key marks it, Delete removes the
// span under the cursor, Enter saves, Esc clears the selection (again: leaves the text).
// The text is only ever set through textContent, never parsed as HTML.
"use strict";

(() => {
  window.AL = window.AL || {};
  window.AL.tasks = window.AL.tasks || {};

  let ctx = null;
  const view = {
    item: null,
    tokens: [], // [start, end] in code points
    pieces: [], // the text of each token
    spans: [], // {a, b, label}: tokens a (included) to b (excluded)
    cursor: 0,
    anchor: null, // selection: anchor .. cursor (token indices), or null
    dragging: false,
    el: null,
    rtl: false,
    source: "", // where the spans shown came from: "", "saved", "model", "dictionary"
  };

  function classIndex(label) {
    return Math.max(0, ctx.classes().indexOf(label)) % 8;
  }

  // Character spans (code points) to token spans; a span off the token bounds is dropped.
  function toTokens(spans) {
    const byStart = new Map();
    const byEnd = new Map();
    view.tokens.forEach(([s, e], i) => {
      byStart.set(s, i);
      byEnd.set(e, i + 1);
    });
    const out = [];
    for (const span of spans || []) {
      const a = byStart.get(span.start);
      const b = byEnd.get(span.end);
      if (a === undefined || b === undefined || b <= a) continue;
      if (out.some((o) => a < o.b && o.a < b)) continue;
      out.push({ a, b, label: String(span.label) });
    }
    return out.sort((x, y) => x.a - y.a);
  }

  function toChars(spans) {
    return spans.map((s) => ({ start: view.tokens[s.a][0], end: view.tokens[s.b - 1][1], label: s.label }));
  }

  function selection() {
    if (view.anchor === null) return null;
    return { a: Math.min(view.anchor, view.cursor), b: Math.max(view.anchor, view.cursor) + 1 };
  }

  function spanAt(i) {
    return view.spans.find((s) => s.a <= i && i < s.b) || null;
  }

  // ------------------------------------------------------------------ drawing

  function render(item, body) {
    view.item = item;
    const text = typeof item.text === "string" ? item.text : "";
    view.tokens = Array.isArray(item.tokens) ? item.tokens : [];
    const points = Array.from(text); // offsets are code points, as the server counts them
    view.pieces = view.tokens.map(([s, e]) => points.slice(s, e).join(""));
    view.rtl = item.direction === "rtl";
    const prelabels = item.prelabels || {};
    if (Array.isArray(item.spans)) {
      view.spans = toTokens(item.spans);
      view.source = "saved";
    } else if (Array.isArray(prelabels.model) && prelabels.model.length) {
      view.spans = toTokens(prelabels.model);
      view.source = "model";
    } else if (Array.isArray(prelabels.dictionary) && prelabels.dictionary.length) {
      view.spans = toTokens(prelabels.dictionary);
      view.source = "dictionary";
    } else {
      view.spans = [];
      view.source = "";
    }
    view.cursor = 0;
    view.anchor = null;

    // The other columns first, as the classification card shows them: they go below the text.
    ctx.renderValues(item);
    const others = Array.from(body.childNodes);
    const wrap = document.createElement("div");
    wrap.className = "spans-task";
    const note = document.createElement("p");
    note.className = "spans-note muted small";
    note.id = "spans-note";
    const el = document.createElement("div");
    el.className = "spans-text";
    el.id = "spans-text";
    el.tabIndex = 0;
    el.dir = view.rtl ? "rtl" : "ltr";
    el.setAttribute("role", "application");
    el.setAttribute("aria-label", "Text to mark: arrows move, Shift+arrows select, a class key marks, Enter saves");
    // Tokens with the text between them, so the page shows the text exactly as it is.
    let at = 0;
    view.tokens.forEach(([s, e], i) => {
      if (s > at) el.append(document.createTextNode(points.slice(at, s).join("")));
      const token = document.createElement("span");
      token.className = "tok";
      token.dataset.i = String(i);
      token.textContent = view.pieces[i];
      el.append(token);
      at = e;
    });
    if (at < points.length) el.append(document.createTextNode(points.slice(at).join("")));
    el.addEventListener("mousedown", onMouseDown);
    el.addEventListener("mouseover", onMouseOver);
    view.el = el;
    const fields = document.createElement("div");
    fields.className = "spans-fields";
    if (item.columns && item.columns.length) fields.append(...others);
    wrap.append(note, el, fields);
    body.replaceChildren(wrap);
    paint();
    el.focus({ preventScroll: true });
  }

  function paint() {
    if (!view.el) return;
    const sel = selection();
    view.el.querySelectorAll(".span-chip").forEach((chip) => chip.remove());
    view.el.querySelectorAll(".tok").forEach((token) => {
      const i = Number(token.dataset.i);
      const span = spanAt(i);
      token.className = "tok";
      if (span) {
        token.classList.add("in-span", `c${classIndex(span.label)}`);
        if (i === span.a) token.classList.add("span-start");
        if (i === span.b - 1) token.classList.add("span-end");
        token.dataset.label = span.label;
        if (i === span.b - 1) {
          const chip = document.createElement("span");
          chip.className = `span-chip c${classIndex(span.label)}`;
          chip.textContent = span.label;
          chip.setAttribute("aria-hidden", "true");
          token.after(chip);
        }
      } else {
        delete token.dataset.label;
      }
      if (sel && sel.a <= i && i < sel.b) token.classList.add("selected");
      if (i === view.cursor) token.classList.add("cursor");
    });
    const note = document.getElementById("spans-note");
    if (note) {
      const n = view.spans.length;
      const from =
        view.source === "model"
          ? ` proposed by the model${view.item.prelabels && view.item.prelabels.model_version ? " v" + view.item.prelabels.model_version : ""}: check them`
          : view.source === "dictionary"
            ? " proposed from the spans labeled before: check them"
            : "";
      note.textContent = `${n} span${n === 1 ? "" : "s"}${from}. Select tokens, press a class key; Delete removes; Enter saves.`;
    }
    document.body.dataset.spans = JSON.stringify(toChars(view.spans));
  }

  // ------------------------------------------------------------------ editing

  function mark(label) {
    const sel = selection() || (spanAt(view.cursor) ? null : { a: view.cursor, b: view.cursor + 1 });
    if (!sel) {
      // The cursor is on a span and nothing is selected: change that span's class.
      spanAt(view.cursor).label = label;
      view.source = view.source === "saved" ? "saved" : "";
      paint();
      return true;
    }
    const clash = view.spans.find((s) => sel.a < s.b && s.a < sel.b);
    if (clash) {
      if (clash.a === sel.a && clash.b === sel.b) {
        clash.label = label;
      } else {
        ctx.message("That overlaps a span already marked: remove it first (Delete), spans must not overlap.", "info");
        return true;
      }
    } else {
      view.spans.push({ a: sel.a, b: sel.b, label });
      view.spans.sort((x, y) => x.a - y.a);
    }
    view.anchor = null;
    view.cursor = Math.min(sel.b, view.tokens.length - 1);
    paint();
    return true;
  }

  // Removes the spans in the selection, else the one under the cursor, else the one just
  // before it (the span just marked: the cursor moved past it).
  function removeAtCursor() {
    const sel = selection();
    const before = view.spans.length;
    const at = spanAt(view.cursor) ? view.cursor : view.cursor - 1;
    view.spans = view.spans.filter((s) => (sel ? !(sel.a < s.b && s.a < sel.b) : !(s.a <= at && at < s.b)));
    view.anchor = null;
    paint();
    return before !== view.spans.length;
  }

  function move(step, extend) {
    if (!view.tokens.length) return;
    if (extend && view.anchor === null) view.anchor = view.cursor;
    if (!extend) view.anchor = null;
    view.cursor = Math.max(0, Math.min(view.tokens.length - 1, view.cursor + step));
    paint();
    const token = view.el.querySelector(`.tok[data-i="${view.cursor}"]`);
    if (token) token.scrollIntoView({ block: "nearest" });
  }

  function save() {
    ctx.save({ spans: toChars(view.spans) });
  }

  // ------------------------------------------------------------------ mouse

  function tokenIndex(target) {
    const token = target instanceof Element ? target.closest(".tok") : null;
    return token ? Number(token.dataset.i) : null;
  }

  function onMouseDown(event) {
    const i = tokenIndex(event.target);
    if (i === null || event.button !== 0) return;
    event.preventDefault(); // no native text selection: ours snaps to tokens
    view.el.focus({ preventScroll: true });
    view.dragging = true;
    view.anchor = i;
    view.cursor = i;
    paint();
  }

  function onMouseOver(event) {
    if (!view.dragging) return;
    const i = tokenIndex(event.target);
    if (i === null) return;
    view.cursor = i;
    paint();
  }

  function onMouseUp() {
    if (!view.dragging) return;
    view.dragging = false;
    // A click on a marked token selects nothing: the cursor is on it (Delete, or a class key).
    if (view.anchor === view.cursor && spanAt(view.cursor)) view.anchor = null;
    paint();
  }

  // ------------------------------------------------------------------ keys

  function onKey(event) {
    if (!view.item || !ctx.current() || ctx.current().item !== view.item) return false;
    const focused = view.el && (document.activeElement === view.el || view.el.contains(document.activeElement));
    const key = event.key;
    if (focused && (key === "ArrowLeft" || key === "ArrowRight")) {
      event.preventDefault();
      const forward = key === "ArrowRight" ? !view.rtl : view.rtl;
      move(forward ? 1 : -1, event.shiftKey);
      return true;
    }
    if (focused && (key === "Home" || key === "End")) {
      event.preventDefault();
      move(key === "Home" ? -view.tokens.length : view.tokens.length, event.shiftKey);
      return true;
    }
    if (focused && key === "Escape") {
      event.preventDefault();
      if (view.anchor !== null) {
        view.anchor = null;
        paint();
      } else {
        view.el.blur();
      }
      return true;
    }
    if (key === "Delete" || key === "Backspace") {
      event.preventDefault();
      removeAtCursor();
      return true;
    }
    const onControl = event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement;
    if (key === "Enter" && !onControl) {
      event.preventDefault();
      if (!event.repeat) save();
      return true;
    }
    if (event.repeat || key.length !== 1) return false;
    const cls = ctx.keyToClass(key.toLowerCase());
    if (cls !== undefined) {
      event.preventDefault();
      return mark(cls);
    }
    return false;
  }

  window.AL.tasks.spans = {
    setup(context) {
      ctx = context;
      document.addEventListener("mouseup", onMouseUp);
    },
    render,
    onKey,
    // The spans on screen, as a save sends them (the review page decides with them).
    value: () => ({ spans: toChars(view.spans) }),
    onClass(cls) {
      if (!view.item) return true;
      mark(cls);
      if (view.el) view.el.focus({ preventScroll: true });
      return true;
    },
    summary(label) {
      try {
        const spans = JSON.parse(label);
        if (Array.isArray(spans)) return `${spans.length} span${spans.length === 1 ? "" : "s"}`;
      } catch {
        // a class imported before the task was spans
      }
      return String(label);
    },
  };
})();
