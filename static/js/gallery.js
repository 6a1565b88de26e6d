// Gallery pages: likes without a reload, bulk selection, and the lightbox (keyboard: ← → + − 0 Enter Esc).
(function () {
  "use strict";

  // ---- likes: POST with the form's CSRF token, update the button from the JSON answer
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("like-form")) return;
    event.preventDefault();
    fetch(form.action, { method: "POST", body: new FormData(form), headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        var button = form.querySelector(".like-btn");
        button.classList.toggle("liked", data.liked);
        button.setAttribute("aria-pressed", data.liked ? "true" : "false");
        button.title = data.liked ? "Unlike" : "Like";
        form.querySelector(".like-count").textContent = data.like_count;
      })
      .catch(function () { form.submit(); });
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) e.preventDefault();
  });

  // ---- bulk selection
  var bulk = document.getElementById("bulk-form");
  if (bulk) {
    var boxes = function () { return Array.prototype.slice.call(document.querySelectorAll(".pick-box")); };
    var refresh = function () {
      var n = boxes().filter(function (b) { return b.checked; }).length;
      document.getElementById("bulk-count").textContent = n + " selected";
      boxes().forEach(function (b) { b.closest(".card-pic").classList.toggle("selected", b.checked); });
      bulk.querySelectorAll("[data-needs-selection]").forEach(function (btn) {
        if (!btn.hasAttribute("title")) btn.disabled = n === 0;
      });
    };
    document.addEventListener("change", function (e) { if (e.target.classList.contains("pick-box")) refresh(); });
    document.getElementById("select-all").addEventListener("click", function () { boxes().forEach(function (b) { b.checked = true; }); refresh(); });
    document.getElementById("select-none").addEventListener("click", function () { boxes().forEach(function (b) { b.checked = false; }); refresh(); });
    refresh();
  }

  // ---- lightbox
  var box = document.getElementById("lightbox");
  if (!box) return;
  var img = document.getElementById("lb-img"), stage = document.getElementById("lb-stage");
  var cards = [], index = 0, zoom = 0;  // zoom 0 = fit
  var cardsNow = function () { return Array.prototype.slice.call(document.querySelectorAll("[data-lightbox] .card-pic")); };

  function fitScale(card) {
    var w = +card.dataset.w || img.naturalWidth || 1, h = +card.dataset.h || img.naturalHeight || 1;
    var s = Math.min((stage.clientWidth - 16) / w, (stage.clientHeight - 16) / h);
    // pixel art: whole factors only, so every source pixel becomes an equal square
    return card.dataset.pixel ? Math.max(1, Math.floor(s)) : Math.min(s, 1);
  }
  function render() {
    var card = cards[index];
    var scale = zoom || fitScale(card);
    img.className = card.dataset.pixel ? "pixel" : "";
    img.style.width = Math.round((+card.dataset.w) * scale) + "px";
    img.style.height = Math.round((+card.dataset.h) * scale) + "px";
    document.getElementById("lb-zoom").textContent = (Math.round(scale * 100) / 100) + "×";
  }
  function show(i) {
    cards = cardsNow(); if (!cards.length) return;
    index = (i + cards.length) % cards.length; zoom = 0;
    var card = cards[index];
    img.src = card.dataset.full; img.alt = card.dataset.caption || "";
    document.getElementById("lb-caption").textContent = card.dataset.caption || "";
    document.getElementById("lb-page").href = card.dataset.page;
    box.hidden = false; document.body.style.overflow = "hidden";
    render();
  }
  function close() { box.hidden = true; document.body.style.overflow = ""; }
  function step(factor) {
    var card = cards[index], current = zoom || fitScale(card);
    if (card.dataset.pixel) zoom = Math.max(1, Math.round(current) + (factor > 1 ? 1 : -1));
    else zoom = Math.max(0.1, current * factor);
    render();
  }

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("[data-lightbox] .lb-open");
    if (link && !e.ctrlKey && !e.metaKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      show(cardsNow().indexOf(link.closest(".card-pic")));
      return;
    }
    var action = e.target.closest && e.target.closest("[data-lb]");
    if (!action || box.hidden) return;
    var what = action.dataset.lb;
    if (what === "close") close();
    else if (what === "prev") show(index - 1);
    else if (what === "next") show(index + 1);
    else if (what === "zoom-in") step(1.25);
    else if (what === "zoom-out") step(0.8);
    else if (what === "fit") { zoom = 0; render(); }
  });
  stage.addEventListener("click", function (e) { if (e.target === stage) close(); });
  document.addEventListener("keydown", function (e) {
    if (box.hidden) return;
    if (e.key === "Escape") close();
    else if (e.key === "ArrowRight") show(index + 1);
    else if (e.key === "ArrowLeft") show(index - 1);
    else if (e.key === "+" || e.key === "=") step(1.25);
    else if (e.key === "-") step(0.8);
    else if (e.key === "0") { zoom = 0; render(); }
    else if (e.key === "Enter") window.location = cards[index].dataset.page;
    else return;
    e.preventDefault();
  });
  window.addEventListener("resize", function () { if (!box.hidden && !zoom) render(); });
})();
