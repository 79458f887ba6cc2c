// Boxes: draw rectangles on an image, each with a class, in the image's own pixels.
// Mouse: drag on the image draws a box of the current class, drag a box moves it, drag its
// corner handle resizes it, a click selects it. Keys: a class key sets the selected box's
// class (and the class of the next box), N adds a box in the middle, Tab-free selection with
// [ and ], arrows move the selected box (Shift+arrows resize it), Delete removes it, Enter
// saves, Esc deselects. Labels are set with textContent; the SVG is built with DOM calls.
"use strict";

(() => {
  window.AL = window.AL || {};
  window.AL.tasks = window.AL.tasks || {};
  const SVG = "http://www.w3.org/2000/svg";
  const MIN = 2; // pixels: a smaller drag is a click, not a box

  let ctx = null;
  const view = {
    item: null,
    width: 0,
    height: 0,
    boxes: [], // {x, y, w, h, label}
    selected: -1,
    cls: null, // the class of the next box
    svg: null,
    drag: null, // {mode: "draw" | "move" | "resize", index, x0, y0, box0}
  };

  function classIndex(label) {
    return Math.max(0, ctx.classes().indexOf(label)) % 8;
  }

  function el(name, attrs) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function clampBox(box) {
    const w = Math.max(1, Math.min(box.w, view.width));
    const h = Math.max(1, Math.min(box.h, view.height));
    return {
      x: Math.round(Math.max(0, Math.min(box.x, view.width - w)) * 10) / 10,
      y: Math.round(Math.max(0, Math.min(box.y, view.height - h)) * 10) / 10,
      w: Math.round(w * 10) / 10,
      h: Math.round(h * 10) / 10,
      label: box.label,
    };
  }

  // ------------------------------------------------------------------ drawing

  function render(item, body) {
    view.item = item;
    const image = item.image || {};
    view.width = Number(image.width) || 0;
    view.height = Number(image.height) || 0;
    view.boxes = Array.isArray(item.boxes) ? item.boxes.map((b) => ({ ...b, label: String(b.label) })) : [];
    view.selected = -1;
    if (!view.cls) view.cls = ctx.classes()[0] || null;
    const wrap = document.createElement("div");
    wrap.className = "boxes-task";
    const note = document.createElement("p");
    note.id = "boxes-note";
    note.className = "muted small";
    const stage = document.createElement("div");
    stage.className = "boxes-stage";
    stage.id = "boxes-stage";
    stage.tabIndex = 0;
    stage.setAttribute("role", "application");
    stage.setAttribute("aria-label", "Image: drag to draw a box, N adds one, arrows move, Enter saves");
    const img = document.createElement("img");
    img.className = "boxes-image";
    img.alt = `image ${item.item_id}`;
    img.draggable = false;
    if (typeof image.url === "string" && image.url.startsWith("/media/")) img.src = image.url;
    const svg = el("svg", { class: "boxes-overlay", viewBox: `0 0 ${view.width || 1} ${view.height || 1}`, preserveAspectRatio: "none" });
    svg.addEventListener("mousedown", onMouseDown);
    view.svg = svg;
    stage.append(img, svg);
    wrap.append(note, stage);
    if (!view.width || !view.height) {
      const missing = document.createElement("p");
      missing.className = "placeholder";
      missing.textContent = "This item's image is missing: skip it.";
      wrap.append(missing);
    }
    body.replaceChildren(wrap);
    paint();
    stage.focus({ preventScroll: true });
  }

  function paint() {
    const svg = view.svg;
    if (!svg) return;
    svg.replaceChildren();
    const scale = Math.max(view.width, view.height) / 400; // strokes and handles: screen-sized
    view.boxes.forEach((box, i) => {
      const group = el("g", { class: `box c${classIndex(box.label)}${i === view.selected ? " selected" : ""}`, "data-i": i });
      group.append(el("rect", { x: box.x, y: box.y, width: box.w, height: box.h, "stroke-width": 2 * scale, class: "box-rect" }));
      const label = el("text", { x: box.x + 2 * scale, y: Math.max(box.y - 3 * scale, 10 * scale), "font-size": 11 * scale, class: "box-label" });
      label.textContent = box.label;
      group.append(label);
      if (i === view.selected) {
        const size = 8 * scale;
        group.append(el("rect", { x: box.x + box.w - size / 2, y: box.y + box.h - size / 2, width: size, height: size, class: "box-handle", "data-handle": "1" }));
      }
      svg.append(group);
    });
    const note = document.getElementById("boxes-note");
    if (note) {
      const n = view.boxes.length;
      note.textContent = `${n} box${n === 1 ? "" : "es"} · next box: ${view.cls || "–"} · ${view.width} × ${view.height} px. Drag to draw, N adds one, Delete removes, Enter saves.`;
    }
    document.body.dataset.boxes = JSON.stringify(view.boxes);
  }

  // ------------------------------------------------------------------ mouse

  function imagePoint(event) {
    const rect = view.svg.getBoundingClientRect();
    return {
      x: Math.max(0, Math.min(view.width, ((event.clientX - rect.left) / rect.width) * view.width)),
      y: Math.max(0, Math.min(view.height, ((event.clientY - rect.top) / rect.height) * view.height)),
    };
  }

  function onMouseDown(event) {
    if (event.button !== 0 || !view.width) return;
    event.preventDefault();
    view.svg.parentElement.focus({ preventScroll: true });
    const p = imagePoint(event);
    const group = event.target instanceof Element ? event.target.closest("g.box") : null;
    if (group) {
      const index = Number(group.dataset.i);
      view.selected = index;
      const mode = event.target.dataset && event.target.dataset.handle ? "resize" : "move";
      view.drag = { mode, index, x0: p.x, y0: p.y, box0: { ...view.boxes[index] } };
    } else {
      view.selected = -1;
      view.drag = { mode: "draw", index: -1, x0: p.x, y0: p.y, box0: null };
    }
    paint();
  }

  function onMouseMove(event) {
    const drag = view.drag;
    if (!drag) return;
    const p = imagePoint(event);
    if (drag.mode === "draw") {
      const box = { x: Math.min(drag.x0, p.x), y: Math.min(drag.y0, p.y), w: Math.abs(p.x - drag.x0), h: Math.abs(p.y - drag.y0), label: view.cls };
      if (drag.index === -1) {
        if (box.w < MIN && box.h < MIN) return;
        view.boxes.push(clampBox(box));
        drag.index = view.boxes.length - 1;
        view.selected = drag.index;
      } else {
        view.boxes[drag.index] = clampBox(box);
      }
    } else if (drag.mode === "move") {
      const b = drag.box0;
      view.boxes[drag.index] = clampBox({ ...b, x: b.x + p.x - drag.x0, y: b.y + p.y - drag.y0 });
    } else {
      const b = drag.box0;
      view.boxes[drag.index] = clampBox({ ...b, w: Math.max(1, b.w + p.x - drag.x0), h: Math.max(1, b.h + p.y - drag.y0) });
    }
    paint();
  }

  function onMouseUp() {
    view.drag = null;
  }

  // ------------------------------------------------------------------ keys

  function nudge(dx, dy, resize) {
    const box = view.boxes[view.selected];
    if (!box) return;
    view.boxes[view.selected] = clampBox(resize ? { ...box, w: box.w + dx, h: box.h + dy } : { ...box, x: box.x + dx, y: box.y + dy });
    paint();
  }

  function onKey(event) {
    if (!view.item || !ctx.current() || ctx.current().item !== view.item) return false;
    const key = event.key;
    const step = Math.max(1, Math.round(Math.max(view.width, view.height) / 100));
    const arrows = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (arrows[key] && view.selected >= 0) {
      event.preventDefault();
      nudge(...arrows[key], event.shiftKey);
      return true;
    }
    if (key === "Escape" && view.selected >= 0) {
      event.preventDefault();
      view.selected = -1;
      paint();
      return true;
    }
    if (key === "Delete" || key === "Backspace") {
      event.preventDefault();
      if (view.selected >= 0) {
        view.boxes.splice(view.selected, 1);
        view.selected = -1;
        paint();
      }
      return true;
    }
    const onControl = event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement;
    if (key === "Enter" && !onControl) {
      event.preventDefault();
      if (!event.repeat) ctx.save(value());
      return true;
    }
    if (event.repeat || key.length !== 1) return false;
    const lower = key.toLowerCase();
    const cls = ctx.keyToClass(lower);
    if (cls !== undefined) {
      event.preventDefault();
      choose(cls);
      return true;
    }
    if (lower === "n" && view.width) {
      event.preventDefault();
      const w = view.width / 4;
      const h = view.height / 4;
      view.boxes.push(clampBox({ x: (view.width - w) / 2, y: (view.height - h) / 2, w, h, label: view.cls }));
      view.selected = view.boxes.length - 1;
      paint();
      return true;
    }
    if ((key === "[" || key === "]") && view.boxes.length) {
      event.preventDefault();
      const n = view.boxes.length;
      view.selected = ((view.selected < 0 ? (key === "]" ? -1 : 0) : view.selected) + (key === "]" ? 1 : n - 1)) % n;
      paint();
      return true;
    }
    return false;
  }

  // The boxes on screen, as a save sends them (the review page decides with them too).
  function value() {
    return { boxes: view.boxes.map((b) => ({ x: b.x, y: b.y, w: b.w, h: b.h, label: b.label })) };
  }

  function choose(cls) {
    view.cls = cls;
    if (view.selected >= 0) view.boxes[view.selected].label = cls;
    paint();
  }

  window.AL.tasks.boxes = {
    setup(context) {
      ctx = context;
      document.addEventListener("mousemove", onMouseMove);
      document.addEventListener("mouseup", onMouseUp);
    },
    render,
    onKey,
    value,
    onClass(cls) {
      choose(cls);
      return true;
    },
    summary(label) {
      try {
        const boxes = JSON.parse(label);
        if (Array.isArray(boxes)) return `${boxes.length} box${boxes.length === 1 ? "" : "es"}`;
      } catch {
        // a class imported before the task was boxes
      }
      return String(label);
    },
  };
})();
