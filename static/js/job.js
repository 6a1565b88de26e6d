// Live progress on the job page: polls status.json every ~700 ms until the job is final. While it runs, the
// line reads "image k of N · step s of S · ETA", and slot k shows the worker's latent preview of image k,
// refreshed every few steps; finished slots keep their last preview until the final pictures replace them.
(function () {
  "use strict";
  var POLL_MS = 700;

  function el(id) { return document.getElementById(id); }

  function text(node, value) { node.textContent = value; }  // never innerHTML: prompts are user text

  function progressText(s) {
    if (s.status === "queued") {
      return "Waiting in the queue" + (s.queue_position ? " (position " + s.queue_position + ")" : "") + "…";
    }
    if (s.status === "running") {
      if (s.cancel_requested) { return "Stopping after the current step…"; }
      if (!s.step) { return "Starting: loading the model…"; }
      if (s.step >= s.total) { return "Finishing: CLIP score and saving…"; }
      return s.progress_line || "Step " + s.step + " / " + s.total + " (" + s.percent + "%)";
    }
    if (s.status === "done") { return "Done."; }
    if (s.status === "cancelled") { return "Cancelled."; }
    return "Failed.";
  }

  function renderImages(container, images) {
    if (container.dataset.rendered === "1" || !images.length) { return; }
    container.dataset.rendered = "1";
    container.replaceChildren();
    images.forEach(function (img) {
      var fig = document.createElement("figure");
      fig.className = "thumb";
      var a = document.createElement("a");
      a.href = img.url;
      var im = document.createElement("img");
      im.src = img.file_url;
      im.alt = "generated image, seed " + img.seed;
      im.width = img.width;
      im.height = img.height;
      if (img.pixelated) { im.className = "pixel"; }
      a.appendChild(im);
      var cap = document.createElement("figcaption");
      var clip = document.createElement("span");
      if (img.clip_score === null) {
        clip.className = "clip clip-none";
        clip.title = img.clip_error || "";
        text(clip, "CLIP unavailable");
      } else {
        clip.className = "clip";
        text(clip, "CLIP " + img.clip_score.toFixed(3));
      }
      cap.appendChild(clip);
      fig.appendChild(a);
      fig.appendChild(cap);
      container.appendChild(fig);
    });
  }

  // One slot per image of the job; slot k shows the latest preview while image k is drawn.
  function renderPreview(container, s) {
    if (container.dataset.rendered === "1" || s.status !== "running") { return; }
    var count = s.progress.images || 0, current = s.progress.image || 0;
    while (container.children.length < count) {
      var k = container.children.length + 1;
      var fig = document.createElement("figure");
      fig.className = "thumb slot";
      fig.dataset.slot = String(k);
      var box = document.createElement("div");
      box.className = "placeholder";
      text(box, "image " + k);
      var cap = document.createElement("figcaption");
      var label = document.createElement("span");
      label.className = "slot-label";
      text(label, "image " + k + " of " + count);
      cap.appendChild(label);
      fig.append(box, cap);
      container.appendChild(fig);
    }
    Array.from(container.children).forEach(function (fig) {
      fig.classList.toggle("drawing", Number(fig.dataset.slot) === current);
    });
    var slot = container.querySelector('[data-slot="' + current + '"]');
    if (!slot || !s.preview_url) { return; }
    var shown = slot.querySelector("img") || slot.querySelector(".placeholder");
    if (shown.getAttribute("src") === s.preview_url || slot.dataset.loading === s.preview_url) { return; }
    slot.dataset.loading = s.preview_url;
    var next = new Image();  // swapped in once loaded: no blank flash between two previews
    next.className = "preview-img";
    next.alt = "preview of image " + current;
    next.onload = function () {
      if (container.dataset.rendered === "1") { return; }  // the final pictures came first
      next.classList.toggle("pixel", next.naturalWidth <= 256);
      var old = slot.querySelector("img") || slot.querySelector(".placeholder");
      if (old) { slot.replaceChild(next, old); }
    };
    next.src = s.preview_url;
  }

  function render(s) {
    var badge = el("job-status");
    text(badge, s.status);
    badge.className = "badge badge-" + s.status;
    el("progress-bar").style.width = s.percent + "%";
    el("progress-bar").parentNode.setAttribute("aria-valuenow", String(s.percent));
    text(el("progress-text"), progressText(s));
    var err = el("job-error");
    text(err, s.error || "");
    err.hidden = !s.error;
    var warn = el("job-warnings");
    text(warn, s.warnings || "");
    warn.hidden = !s.warnings;
    el("cancel-form").hidden = s.is_final;
    var noWorker = el("no-worker");
    if (noWorker && s.status !== "queued") { noWorker.hidden = true; }  // a worker took the job
    if (s.is_final) { clearMessages(); }
    renderPreview(el("job-images"), s);
    if (s.status === "done") {
      renderImages(el("job-images"), s.images);
      text(el("job-seed"), seedsText(s.images));
    }
  }

  // The seeds actually used (image i: seed + i), once the pictures exist; "random seed" said nothing.
  function seedsText(images) {
    if (!images.length) { return el("job-seed").textContent; }
    var first = images[0].seed, last = images[images.length - 1].seed;
    return first === last ? "seed " + first : "seeds " + first + "–" + last;
  }

  // Flash messages on a job page that was still running when loaded ("Stopping the job after the
  // current step…") are out of date once the job is final.
  function clearMessages() {
    document.querySelectorAll(".messages").forEach(function (list) { list.remove(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = el("job");
    if (!root || root.dataset.final === "1") { return; }
    var url = root.dataset.statusUrl;
    var failures = 0;
    function poll() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (s) {
          failures = 0;
          render(s);
          if (!s.is_final) { window.setTimeout(poll, POLL_MS); }
        })
        .catch(function () {
          failures += 1;  // the server restarting: back off, keep trying
          window.setTimeout(poll, Math.min(10000, POLL_MS * Math.pow(2, failures)));
        });
    }
    window.setTimeout(poll, POLL_MS);
  });
})();
