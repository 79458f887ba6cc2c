// Audio: listen, then pick a class (the class keys and buttons label, as for a row).
// Keys: Space plays or pauses, [ and ] seek 5 seconds back and forward, 0 goes to the start.
"use strict";

(() => {
  window.AL = window.AL || {};
  window.AL.tasks = window.AL.tasks || {};
  const SEEK_S = 5;

  let ctx = null;
  let player = null;
  let shown = null;

  function render(item, body) {
    shown = item;
    ctx.renderValues(item);
    const fields = Array.from(body.childNodes);
    const wrap = document.createElement("div");
    wrap.className = "audio-task";
    player = document.createElement("audio");
    player.id = "audio-player";
    player.controls = true;
    player.preload = "auto";
    if (typeof item.audio === "string" && item.audio.startsWith("/media/")) player.src = item.audio;
    const keys = document.createElement("p");
    keys.className = "muted small";
    keys.textContent = "Space plays or pauses · [ and ] seek 5 s · 0 back to the start · then a class key labels.";
    wrap.append(player, keys, ...fields);
    body.replaceChildren(wrap);
  }

  function onKey(event) {
    if (!player || !ctx.current() || ctx.current().item !== shown) return false;
    const onControl = event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement;
    if (event.key === " " && !onControl && event.target !== player) {
      event.preventDefault();
      if (player.paused) player.play().catch((error) => ctx.message(`The sound does not play: ${error.message}`, "info"));
      else player.pause();
      return true;
    }
    if (event.key === "[" || event.key === "]") {
      event.preventDefault();
      const to = player.currentTime + (event.key === "]" ? SEEK_S : -SEEK_S);
      player.currentTime = Math.max(0, Number.isFinite(player.duration) ? Math.min(to, player.duration) : to);
      return true;
    }
    if (event.key === "0") {
      // 0 is not a class key (they start at 1): back to the start.
      event.preventDefault();
      player.currentTime = 0;
      return true;
    }
    return false;
  }

  window.AL.tasks.audio = {
    setup(context) {
      ctx = context;
    },
    render,
    onKey,
  };
})();
